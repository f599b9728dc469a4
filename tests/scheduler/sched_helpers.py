"""Helpers shared by the scheduler tests (a settable clock, staff factory)."""

from __future__ import annotations

from datetime import datetime

from kernel.roles import Role
from scheduler.staff import StaffMember, StaffStore

SECRET = "test-secret-" + "x" * 40


class FakeClock:
    """A settable clock (epoch seconds) for the scheduler and tokens."""

    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = at.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def add_staff(
    store: StaffStore,
    username: str,
    role: Role,
    *,
    topics: list[str] | None = None,
    languages: list[str] | None = None,
    **extra: object,
) -> StaffMember:
    member = StaffMember.model_validate(
        {
            "username": username,
            "display_name": username.title(),
            "role": role,
            "topics": topics or [],
            "languages": languages or ["ko"],
            **extra,
        }
    )
    return await store.add(member, "password123")
