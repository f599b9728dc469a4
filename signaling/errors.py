"""The signaling package's root exception and its causes."""


class SignalingError(Exception):
    """Root of every error raised by ``signaling``; ``str()`` says what to fix."""


class IllegalTransition(SignalingError):
    """A room or participant was asked to move to a state it cannot reach from where it is."""


class UnknownRoomError(SignalingError):
    pass
