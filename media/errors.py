"""The media package's root exception."""


class MediaError(Exception):
    """Root of every error raised by ``media``; ``str()`` says what went wrong."""


class NegotiationError(MediaError):
    """An SDP answer or candidate could not be applied."""
