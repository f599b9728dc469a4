"""The one root exception of the interpretation package, and its kinds."""

from __future__ import annotations


class InterpretationError(Exception):
    """Anything captions, translation or transcripts refuse to do, said for a person."""


class PackageError(InterpretationError):
    """A translation package file is not usable (not a zip, missing files, bad metadata)."""


class ModelNotAvailable(InterpretationError):
    """No speech model or translation route for the language asked for."""


class GlossaryError(InterpretationError):
    """The glossary file or an edit to it is not valid."""
