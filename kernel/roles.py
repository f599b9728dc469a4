"""Who takes part in a consultation: one role list for tokens, staff accounts and pages."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    RESIDENT = "resident"
    COUNSELOR = "counselor"
    INTERPRETER = "interpreter"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.RESIDENT

    @property
    def can_moderate(self) -> bool:
        return self in (Role.COUNSELOR, Role.ADMIN)


#: Roles a staff account can have (a resident never has an account).
STAFF_ROLES: tuple[Role, ...] = tuple(r for r in Role if r.is_staff)
