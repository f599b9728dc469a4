"""The scheduler's root exception and its specific causes."""


class SchedulerError(Exception):
    """Root of every error the scheduler raises; ``str()`` says what to fix."""


class StaffExistsError(SchedulerError):
    pass


class UnknownStaffError(SchedulerError):
    pass
