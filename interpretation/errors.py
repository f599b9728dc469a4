"""The one root exception of the interpretation package, and its kinds.

Every error this package raises is an :class:`InterpretationError`, with a message
that says what happened and what a person can do about it. Errors from the
libraries underneath (Vosk, CTranslate2, the file system) are wrapped, with the
original as ``__cause__``.
"""

from __future__ import annotations


class InterpretationError(Exception):
    """Anything captions, translation or transcripts refuse to do, said for a person."""


class PackageError(InterpretationError):
    """A translation package file is not usable (not a zip, missing files, bad metadata)."""


class ModelNotAvailable(InterpretationError):
    """No speech model or translation route for the language asked for."""


class GlossaryError(InterpretationError):
    """The glossary file or an edit to it is not valid."""


class TranscriptError(InterpretationError):
    """A transcript cannot be named, read or written."""


class TranslationFailed(InterpretationError):
    """A translation package was found but translating with it failed."""


class ShuttingDown(InterpretationError):
    """Captions are shutting down (the translator or worker threads are closed)."""


class IllegalTransition(InterpretationError):
    """A caption pipeline or speaker was asked to move to a state it cannot reach (a bug)."""


class PipelineClosed(InterpretationError):
    """The room's caption pipeline is closed; the room has to be opened again."""


class PipelineExists(InterpretationError):
    """The room already has a caption pipeline on this node."""


class SpeakerAlreadyCaptioned(InterpretationError):
    """The participant is already being captioned; stop their captions first."""


class SpeakerFailed(InterpretationError):
    """Live captions for one speaker stopped; the other speakers go on."""


class AudioFailed(SpeakerFailed):
    """The speaker's audio stopped arriving with an error (the audio tap failed)."""


class RecognitionFailed(SpeakerFailed):
    """Speech recognition for the speaker raised (the model or decoder failed)."""


class RecognitionStalled(RecognitionFailed):
    """Speech recognition for the speaker did not answer within its bound."""
