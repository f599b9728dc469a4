"""The scheduler's root exception and its specific causes.

Every error carries a stable ``code`` (used as the wire error code at the HTTP
boundary) and a message that says what to fix.
"""


class SchedulerError(Exception):
    """Root of every error the scheduler raises; ``str()`` says what to fix."""

    code = "scheduler_error"


class StaffExistsError(SchedulerError):
    code = "staff_exists"


class UnknownStaffError(SchedulerError):
    code = "unknown_staff"


class WeakPasswordError(SchedulerError):
    code = "weak_password"


class UnknownTopicError(SchedulerError):
    code = "unknown_topic"


class InvalidSlotError(SchedulerError):
    """The chosen time is in the past, off the slot grid, outside hours or on a holiday."""

    code = "invalid_slot"


class SlotTakenError(SchedulerError):
    """Nobody with the needed skills is free at that time any more."""

    code = "slot_taken"


class NoInterpreterError(SlotTakenError):
    code = "no_interpreter"


class UnknownBookingError(SchedulerError):
    code = "unknown_booking"


class BookingKeyError(SchedulerError):
    """The booking key given does not match the booking."""

    code = "wrong_booking_key"


class IllegalTransition(SchedulerError):
    code = "illegal_transition"


class TooEarlyError(IllegalTransition):
    """A booking started before its join links open."""

    code = "too_early"


class UnknownTicketError(SchedulerError):
    code = "unknown_ticket"
