"""Staff accounts: the one Role enum, languages, the root exception, sign-in cost."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from kernel.roles import STAFF_ROLES, Role
from scheduler.errors import SchedulerError
from scheduler.staff import StaffMember, StaffStore

pytestmark = pytest.mark.timeout(30)


def member(**over: object) -> StaffMember:
    data: dict[str, object] = {"username": "park", "display_name": "Park", "role": "counselor"}
    data.update(over)
    return StaffMember.model_validate(data)


def test_staff_roles_are_the_kernel_roles() -> None:
    for role in STAFF_ROLES:
        assert member(role=role.value).role is role
    with pytest.raises(ValidationError, match="resident is not a staff role"):
        member(role="resident")
    with pytest.raises(ValidationError, match="role"):
        member(role="janitor")


def test_languages_are_checked_against_the_one_list() -> None:
    assert member(languages=["ja", "ko"]).languages == ["ja", "ko"]
    with pytest.raises(ValidationError, match=r"unknown language code\(s\) fr; use ko, en, ja"):
        member(languages=["ko", "fr"])
    with pytest.raises(ValidationError, match="at least one language"):
        member(languages=[])


def test_a_blank_display_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="display_name"):
        member(display_name="   ")


async def test_a_short_password_is_a_scheduler_error(redis: aioredis.Redis) -> None:
    with pytest.raises(SchedulerError, match="at least 8 characters"):
        await StaffStore(redis).add(member(), "short")


async def test_an_unknown_username_costs_one_hash_like_a_wrong_password(
    redis: aioredis.Redis,
) -> None:
    """Otherwise the time of a failed sign-in tells whether the username exists.

    Measured in CPU time of this process (the hash runs in a worker thread), which other
    load on the machine hardly changes; it used to be two hashes for an unknown name.
    """
    store = StaffStore(redis)
    await store.add(member(), "correct horse")

    async def cpu_s(username: str) -> float:
        start = time.process_time()
        assert await store.authenticate(username, "wrong password") is None
        return time.process_time() - start

    known, unknown = [], []
    for _ in range(3):
        known.append(await cpu_s("park"))
        unknown.append(await cpu_s("nobody"))
    ratio = min(unknown) / min(known)
    assert ratio < 1.5, f"unknown {min(unknown) * 1000:.0f} ms, known {min(known) * 1000:.0f} ms"


def test_role_is_not_a_private_enum() -> None:
    import scheduler.staff

    assert not hasattr(scheduler.staff, "StaffRole")
    assert StaffMember.model_fields["role"].annotation is Role
