"""The media package's root exception and its kinds.

Each kind names the wire error code the composition root turns it into, so the
page can say what happened without parsing English.
"""

from __future__ import annotations

from typing import ClassVar


class MediaError(Exception):
    """Root of every error raised by ``media``; ``str()`` says what went wrong."""

    code: ClassVar[str] = "media_unavailable"


class NegotiationError(MediaError):
    """An SDP answer or candidate could not be applied."""

    code: ClassVar[str] = "negotiation_failed"


class RecordingWriteError(MediaError):
    """A recording's files could not be written; the recording was stopped."""
