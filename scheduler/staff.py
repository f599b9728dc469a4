"""Staff profiles (counselors, interpreters, admins) kept in Redis.

Passwords are hashed with scrypt (50-100 ms of CPU each); hashing runs in a worker
thread, never on the event loop that forwards every RTP packet.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Final, TypeVar
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from kernel.languages import Language, check_languages
from kernel.roles import STAFF_ROLES, Role
from scheduler.errors import StaffExistsError, UnknownStaffError, WeakPasswordError
from scheduler.timezones import check_timezone

T = TypeVar("T")

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
_KEY_PREFIX = "sb:staff:"
_INDEX = "sb:staff-index"
MIN_PASSWORD = 8

#: A staff account's role: any ``Role`` but resident (validated by ``StaffMember``).
_AccountRole = Annotated[
    Role,
    WithJsonSchema({"type": "string", "enum": [r.value for r in STAFF_ROLES]}),
]


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @classmethod
    def of(cls, day: date) -> Weekday:
        return list(cls)[day.weekday()]


class TimeRange(BaseModel):
    """Working time within one day, in the staff member's time zone; ``end`` is exclusive."""

    start: time
    end: time

    @model_validator(mode="after")
    def _order(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError(f"a time range must end after it starts ({self.start}-{self.end})")
        return self


class Leave(BaseModel):
    """Days off (inclusive), in the staff member's time zone."""

    start: date
    end: date
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _order(self) -> Leave:
        if self.end < self.start:
            raise ValueError(f"leave must end on or after its first day ({self.start}..{self.end})")
        return self


def default_hours() -> dict[Weekday, list[TimeRange]]:
    """Monday to Friday, 09:00-18:00: the center's opening hours."""
    workday = [TimeRange(start=time(9), end=time(18))]
    return {
        day: list(workday)
        for day in (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)
    }


def _korean() -> list[Language]:
    return ["ko"]


class StaffMember(BaseModel):
    username: str
    display_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)
    ]
    role: _AccountRole
    languages: list[Language] = Field(default_factory=lambda: _korean())
    topics: list[str] = Field(default_factory=list)
    timezone: str = "Asia/Seoul"
    weekly_hours: dict[Weekday, list[TimeRange]] = Field(default_factory=default_hours)
    leave: list[Leave] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    def works(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies inside this person's hours and not on leave."""
        zone = ZoneInfo(self.timezone)
        local_start = start.astimezone(zone)
        local_end = end.astimezone(zone)
        day = local_start.date()
        if local_end.date() != day and local_end.time() != time(0):
            return False
        if any(leave.start <= day <= leave.end for leave in self.leave):
            return False
        end_t = local_end.time() if local_end.date() == day else time.max
        return any(
            r.start <= local_start.time() and end_t <= r.end
            for r in self.weekly_hours.get(Weekday.of(day), [])
        )

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not _USERNAME.match(value):
            raise ValueError(
                "username must be 2-32 characters of lower-case letters, digits, '.', '_' or '-'"
            )
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: Role) -> Role:
        if value not in STAFF_ROLES:
            raise ValueError(
                f"{value.value} is not a staff role; a staff account is one of "
                f"{', '.join(r.value for r in STAFF_ROLES)}"
            )
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: object) -> object:
        if isinstance(value, list):
            if not value:
                raise ValueError("at least one language is needed")
            check_languages([str(code) for code in value])
        return value

    def counsels(self, topic: str) -> bool:
        """A counselor for ``topic``."""
        return self.role is Role.COUNSELOR and topic in self.topics

    def interprets(self, language: str) -> bool:
        """An interpreter who speaks ``language``."""
        return self.role is Role.INTERPRETER and language in self.languages


class _StoredStaff(StaffMember):
    password_hash: str


_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
#: Checked against when the username is unknown: one scrypt with the real parameters,
#: so a failed sign-in takes as long whether or not the username exists.
_NO_SUCH_USER: Final = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * _DKLEN}"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """scrypt with a random salt; the result encodes its parameters. Blocks ~50-100 ms."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = encoded.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=_DKLEN
    )
    return hmac.compare_digest(digest.hex(), digest_hex)


class StaffStore:
    """Staff accounts. Passwords are scrypt-hashed; hashes never leave this class.

    Hashing runs in worker threads, at most ``hash_concurrency`` at a time: a burst of
    sign-ins then waits its turn instead of taking every core from the event loop.
    """

    def __init__(self, redis: aioredis.Redis, *, hash_concurrency: int = 1) -> None:
        self._redis = redis
        self._hashing = asyncio.Semaphore(hash_concurrency)

    async def _off_loop(self, work: Callable[..., T], *args: str) -> T:
        async with self._hashing:
            return await asyncio.to_thread(work, *args)

    async def add(self, member: StaffMember, password: str) -> StaffMember:
        if len(password) < MIN_PASSWORD:
            raise WeakPasswordError(f"password must be at least {MIN_PASSWORD} characters")
        encoded = await self._off_loop(hash_password, password)
        stored = _StoredStaff(**member.model_dump(), password_hash=encoded)
        created = await self._redis.set(
            _KEY_PREFIX + member.username, stored.model_dump_json(), nx=True
        )
        if not created:
            raise StaffExistsError(f"staff member {member.username!r} already exists")
        await self._redis.sadd(_INDEX, member.username)
        return member

    async def update(self, member: StaffMember) -> StaffMember:
        raw = await self._redis.get(_KEY_PREFIX + member.username)
        if raw is None:
            raise UnknownStaffError(f"no staff member {member.username!r}")
        old = _StoredStaff.model_validate_json(raw)
        stored = _StoredStaff(**member.model_dump(), password_hash=old.password_hash)
        await self._redis.set(_KEY_PREFIX + member.username, stored.model_dump_json())
        return member

    async def get(self, username: str) -> StaffMember | None:
        raw = await self._redis.get(_KEY_PREFIX + username)
        if raw is None:
            return None
        return StaffMember.model_validate(
            _StoredStaff.model_validate_json(raw).model_dump(exclude={"password_hash"})
        )

    async def list(self) -> list[StaffMember]:
        names = sorted(
            n.decode() if isinstance(n, bytes) else str(n)
            for n in await self._redis.smembers(_INDEX)
        )
        if not names:
            return []
        raws = await self._redis.mget([_KEY_PREFIX + name for name in names])
        return [
            StaffMember.model_validate(
                _StoredStaff.model_validate_json(raw).model_dump(exclude={"password_hash"})
            )
            for raw in raws
            if raw is not None
        ]

    async def authenticate(self, username: str, password: str) -> StaffMember | None:
        raw = await self._redis.get(_KEY_PREFIX + username)
        stored = None if raw is None else _StoredStaff.model_validate_json(raw)
        # An unknown username costs one hash too, so usernames cannot be probed by time.
        encoded = _NO_SUCH_USER if stored is None else stored.password_hash
        if not await self._off_loop(verify_password, password, encoded) or stored is None:
            return None
        return StaffMember.model_validate(stored.model_dump(exclude={"password_hash"}))

    async def remove(self, username: str) -> None:
        deleted = await self._redis.delete(_KEY_PREFIX + username)
        await self._redis.srem(_INDEX, username)
        if not deleted:
            raise UnknownStaffError(f"no staff member {username!r}")
