"""Who takes part in a consultation: one role list for tokens, staff accounts and pages."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    RESIDENT = "resident"
    COUNSELOR = "counselor"
    INTERPRETER = "interpreter"
    ADMIN = "admin"
    #: receives audio, video and captions but publishes nothing; joins through the
    #: lobby, is shown to everyone as an observer, is asked for recording consent.
    #: A link made by the counselor, not a staff account.
    OBSERVER = "observer"

    @property
    def is_staff(self) -> bool:
        return self not in (Role.RESIDENT, Role.OBSERVER)

    @property
    def can_moderate(self) -> bool:
        return self in (Role.COUNSELOR, Role.ADMIN)

    @property
    def publishes(self) -> bool:
        """Whether the server accepts this participant's microphone and camera."""
        return self is not Role.OBSERVER


#: Roles a staff account can have (a resident never has an account).
STAFF_ROLES: tuple[Role, ...] = tuple(r for r in Role if r.is_staff)
