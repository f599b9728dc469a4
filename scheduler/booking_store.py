"""Bookings in Redis, committed atomically by Lua so that no person or slot is double-booked.

Layout (all keys under ``sb:``):

- ``sb:booking:{id}``        hash: one booking (see ``_FIELDS``)
- ``sb:busy:{username}``     sorted set: ``"{end}|{booking_id}"`` scored by start (epoch s)
- ``sb:bookings:day:{date}`` sorted set: booking ids of one Seoul date, scored by start
- ``sb:load:{date}``         hash: username -> confirmed bookings that Seoul date

The reserve script checks every candidate's busy set and writes the booking, the holds
and the counters in one step; Redis runs scripts one at a time, so two server
processes (or two hundred requests) cannot both win the same person at the same time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from scheduler.errors import (
    IllegalTransition,
    NoInterpreterError,
    SlotTakenError,
    UnknownBookingError,
)
from scheduler.models import (
    Booking,
    BookingState,
    IdentityCheck,
    ResidentDetails,
    check_booking_transition,
)
from scheduler.timezones import SEOUL

MAX_SLOT_S = 4 * 3600
_UNUSED = "sb:unused"

_LUA_COMMON = """
local function free(key, s, e)
  local items = redis.call('ZRANGEBYSCORE', key, s - tonumber(ARGV[5]), '(' .. e)
  for _, m in ipairs(items) do
    local mend = tonumber(string.match(m, '^(%d+)|'))
    if mend > s then return false end
  end
  return true
end
-- first candidate key index, first name index in ARGV, count, preferred name
local function pick(kfirst, afirst, n, prefer, s, e)
  local best, best_key, best_load = nil, nil, nil
  for i = 0, n - 1 do
    local key = KEYS[kfirst + i]
    local name = ARGV[afirst + i]
    if free(key, s, e) then
      if name == prefer then return name, key end
      local l = tonumber(redis.call('HGET', KEYS[3], name) or '0')
      if best == nil or l < best_load then best, best_key, best_load = name, key, l end
    end
  end
  return best, best_key
end
"""

# KEYS: 1 booking, 2 day index, 3 load, 4 old day index, 5 old load, 6 old counselor busy,
#       7 old interpreter busy, 8.. counselor busy sets, then interpreter busy sets
# ARGV: 1 mode (reserve|move), 2 id, 3 start, 4 end, 5 max slot s, 6 nc, 7 ni,
#       8 need interpreter (1|0), 9 prefer counselor, 10 prefer interpreter,
#       11 old start, 12 old member, 13 old counselor, 14 old interpreter,
#       15.. candidate names (counselors then interpreters), then hash field/value pairs
_RESERVE = (
    _LUA_COMMON
    + """
local mode, id = ARGV[1], ARGV[2]
local s, e = tonumber(ARGV[3]), tonumber(ARGV[4])
local nc, ni = tonumber(ARGV[6]), tonumber(ARGV[7])
local old_start, old_member, old_c, old_i = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
if mode == 'move' then
  if redis.call('HGET', KEYS[1], 'state') ~= 'confirmed' then return {0, 'not_confirmed'} end
  redis.call('ZREM', KEYS[6], old_member)
  if old_i ~= '' then redis.call('ZREM', KEYS[7], old_member) end
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, 'exists'}
end
local c, ckey = pick(8, 15, nc, ARGV[9], s, e)
local i, ikey = nil, nil
local fail = nil
if not c then
  fail = 'no_counselor'
elseif ARGV[8] == '1' then
  i, ikey = pick(8 + nc, 15 + nc, ni, ARGV[10], s, e)
  if not i then fail = 'no_interpreter' end
end
if fail then
  if mode == 'move' then
    redis.call('ZADD', KEYS[6], old_start, old_member)
    if old_i ~= '' then redis.call('ZADD', KEYS[7], old_start, old_member) end
  end
  return {0, fail}
end
if mode == 'move' then
  redis.call('HINCRBY', KEYS[5], old_c, -1)
  if old_i ~= '' then redis.call('HINCRBY', KEYS[5], old_i, -1) end
  redis.call('ZREM', KEYS[4], id)
end
local member = ARGV[4] .. '|' .. id
redis.call('ZADD', ckey, s, member)
redis.call('HINCRBY', KEYS[3], c, 1)
if i then
  redis.call('ZADD', ikey, s, member)
  redis.call('HINCRBY', KEYS[3], i, 1)
end
redis.call('ZADD', KEYS[2], s, id)
local first = 15 + nc + ni
for k = first, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1]) end
redis.call('HSET', KEYS[1], 'counselor', c, 'interpreter', i or '')
return {1, c, i or ''}
"""
)

# KEYS: 1 booking, 2 load, 3 counselor busy, 4 interpreter busy
# ARGV: 1 expected state, 2 new state, 3 busy member, 4 counselor, 5 interpreter, 6 release
_TRANSITION = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HINCRBY', KEYS[2], ARGV[4], -1)
  if ARGV[5] ~= '' then
    redis.call('ZREM', KEYS[4], ARGV[3])
    redis.call('HINCRBY', KEYS[2], ARGV[5], -1)
  end
end
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def booking_key(booking_id: str) -> str:
    return f"sb:booking:{booking_id}"


def busy_key(username: str) -> str:
    return f"sb:busy:{username}"


def day_key(day: date) -> str:
    return f"sb:bookings:day:{day.isoformat()}"


def load_key(day: date) -> str:
    return f"sb:load:{day.isoformat()}"


def _seoul_day(at: datetime) -> date:
    return at.astimezone(SEOUL).date()


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


@dataclass(frozen=True)
class Interval:
    start: int
    end: int
    booking_id: str


class BookingStore:
    """Reads and atomic writes of bookings; matching decisions are made in Lua."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._transition = redis.register_script(_TRANSITION)

    @staticmethod
    def _fields(booking: Booking, key_hash: str) -> list[str]:
        return [
            "id", booking.id,
            "state", booking.state.value,
            "resident", booking.resident.model_dump_json(),
            "topic", booking.topic,
            "needs_interpreter", "1" if booking.needs_interpreter else "0",
            "start", str(_epoch(booking.start)),
            "end", str(_epoch(booking.end)),
            "room_id", booking.room_id or "",
            "created_at", str(booking.created_at.timestamp()),
            "key_hash", key_hash,
        ]  # fmt: skip

    async def reserve(
        self,
        booking: Booking,
        *,
        key_hash: str,
        counselors: list[str],
        interpreters: list[str],
    ) -> Booking:
        """Write ``booking`` with the least-loaded free counselor (and interpreter).

        ``booking.counselor``/``interpreter`` are ignored; the chosen ones are returned.
        """
        day = _seoul_day(booking.start)
        keys = [booking_key(booking.id), day_key(day), load_key(day)] + [_UNUSED] * 4
        result = await self._run(
            "reserve", booking, keys, counselors, interpreters, key_hash=key_hash
        )
        return booking.model_copy(update=result)

    async def move(
        self,
        booking: Booking,
        start: datetime,
        end: datetime,
        *,
        counselors: list[str],
        interpreters: list[str],
    ) -> Booking:
        """Move a confirmed booking to [start, end), keeping its people when they are free."""
        old_day = _seoul_day(booking.start)
        day = _seoul_day(start)
        keys = [
            booking_key(booking.id),
            day_key(day),
            load_key(day),
            day_key(old_day),
            load_key(old_day),
            busy_key(booking.counselor),
            busy_key(booking.interpreter) if booking.interpreter else _UNUSED,
        ]
        moved = booking.model_copy(update={"start": start, "end": end})
        result = await self._run(
            "move",
            moved,
            keys,
            counselors,
            interpreters,
            prefer=(booking.counselor, booking.interpreter or ""),
            old=booking,
        )
        return moved.model_copy(update=result)

    async def _run(
        self,
        mode: str,
        booking: Booking,
        keys: list[str],
        counselors: list[str],
        interpreters: list[str],
        *,
        key_hash: str | None = None,
        prefer: tuple[str, str] = ("", ""),
        old: Booking | None = None,
    ) -> dict[str, str | None]:
        need = booking.needs_interpreter
        interpreters = interpreters if need else []
        keys = keys + [busy_key(n) for n in counselors] + [busy_key(n) for n in interpreters]
        if mode == "reserve":
            assert key_hash is not None
            fields = self._fields(booking, key_hash)
        else:
            fields = ["start", str(_epoch(booking.start)), "end", str(_epoch(booking.end))]
        args: list[str | int] = [
            mode,
            booking.id,
            _epoch(booking.start),
            _epoch(booking.end),
            MAX_SLOT_S,
            len(counselors),
            len(interpreters),
            "1" if need else "0",
            prefer[0],
            prefer[1],
            _epoch(old.start) if old else 0,
            f"{_epoch(old.end)}|{old.id}" if old else "",
            old.counselor if old else "",
            (old.interpreter or "") if old else "",
            *counselors,
            *interpreters,
            *fields,
        ]
        raw = await self._reserve(keys=keys, args=args)
        status, *rest = raw
        if int(status) != 1:
            reason = _text(rest[0])
            if reason == "no_interpreter":
                raise NoInterpreterError(
                    "no interpreter for this language is free at that time; choose another slot"
                )
            if reason == "not_confirmed":
                raise IllegalTransition(
                    f"booking {booking.id} is no longer confirmed and cannot be moved"
                )
            if reason == "exists":
                raise SlotTakenError(f"booking id {booking.id} is already in use; try again")
            raise SlotTakenError(
                "that slot has just been taken: no counselor for this topic is free then; "
                "choose another slot"
            )
        interpreter = _text(rest[1])
        return {"counselor": _text(rest[0]), "interpreter": interpreter or None}

    async def set_room(self, booking_id: str, room_id: str) -> None:
        await self._redis.hset(booking_key(booking_id), "room_id", room_id)

    async def get(self, booking_id: str) -> tuple[Booking, str] | None:
        """The booking and its manage-key hash, or None."""
        raw = await self._redis.hgetall(booking_key(booking_id))
        if not raw:
            return None
        return self._parse({_text(k): _text(v) for k, v in raw.items()})

    @staticmethod
    def _parse(f: dict[str, str]) -> tuple[Booking, str]:
        # Stored data was validated on the way in (and contact may have been erased since).
        booking = Booking.model_construct(
            id=f["id"],
            state=BookingState(f["state"]),
            # Stored data was validated on the way in; do not re-run contact checks.
            resident=ResidentDetails.model_construct(**json.loads(f["resident"])),
            topic=f["topic"],
            needs_interpreter=f["needs_interpreter"] == "1",
            start=datetime.fromtimestamp(int(f["start"]), UTC),
            end=datetime.fromtimestamp(int(f["end"]), UTC),
            counselor=f["counselor"],
            interpreter=f.get("interpreter") or None,
            room_id=f.get("room_id") or None,
            created_at=datetime.fromtimestamp(float(f["created_at"]), UTC),
            identity_checks=[
                IdentityCheck.model_validate(c) for c in json.loads(f.get("identity") or "[]")
            ],
            contact_erased_at=(
                datetime.fromtimestamp(float(f["contact_erased_at"]), UTC)
                if f.get("contact_erased_at")
                else None
            ),
        )
        return booking, f.get("key_hash", "")

    # -------------------------------------------------------------- privacy
    async def add_identity_check(self, booking_id: str, check: IdentityCheck) -> None:
        """Append ``check`` to the booking's identity checks (a JSON list in one field)."""
        key = booking_key(booking_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, "identity")
                    if not await pipe.exists(key):
                        raise UnknownBookingError(f"there is no booking {booking_id!r}")
                    checks = json.loads(_text(raw) if raw else "[]")
                    checks.append(check.model_dump(mode="json"))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, "identity", json.dumps(checks))
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def ended_before(self, cutoff: datetime) -> list[Booking]:
        """Bookings whose slot ended before ``cutoff`` and still hold contact data."""
        found: list[Booking] = []
        async for key in self._redis.scan_iter(match="sb:booking:*", count=500):
            raw = await self._redis.hgetall(key)
            if not raw:
                continue
            fields = {_text(k): _text(v) for k, v in raw.items()}
            if fields.get("contact_erased_at") or int(fields.get("end", "0")) >= _epoch(cutoff):
                continue
            found.append(self._parse(fields)[0])
        return found

    async def erase_contact(self, booking_id: str, at: datetime) -> bool:
        """Erase the resident's name and contact (e-mail/phone), and the identity checks'
        last characters; keep what statistics need (country, zone, language, topic)."""
        found = await self.get(booking_id)
        if found is None:
            return False
        booking, _ = found
        resident = booking.resident.model_dump()
        resident.update(name="", contact="")
        checks = [c.model_copy(update={"check": None}) for c in booking.identity_checks]
        await self._redis.hset(
            booking_key(booking_id),
            mapping={
                "resident": json.dumps(resident),
                "identity": json.dumps([c.model_dump(mode="json") for c in checks]),
                "contact_erased_at": str(at.timestamp()),
            },
        )
        return True

    async def require(self, booking_id: str) -> tuple[Booking, str]:
        found = await self.get(booking_id)
        if found is None:
            raise UnknownBookingError(f"there is no booking {booking_id!r}")
        return found

    async def transition(self, booking: Booking, new: BookingState) -> Booking:
        """Move ``booking`` to ``new`` if it is still in the state we read (else re-check)."""
        while True:
            check_booking_transition(booking.id, booking.state, new)
            release = new in (BookingState.CANCELLED,)
            day = _seoul_day(booking.start)
            result = await self._transition(
                keys=[
                    booking_key(booking.id),
                    load_key(day),
                    busy_key(booking.counselor),
                    busy_key(booking.interpreter) if booking.interpreter else _UNUSED,
                ],
                args=[
                    booking.state.value,
                    new.value,
                    f"{_epoch(booking.end)}|{booking.id}",
                    booking.counselor,
                    booking.interpreter or "",
                    "1" if release else "0",
                ],
            )
            if int(result) == 1:
                return booking.model_copy(update={"state": new})
            booking, _ = await self.require(booking.id)

    async def on_day(self, day: date) -> list[Booking]:
        ids = await self._redis.zrange(day_key(day), 0, -1)
        async with self._redis.pipeline(transaction=False) as pipe:
            for booking_id in ids:
                pipe.hgetall(booking_key(_text(booking_id)))  # type: ignore[arg-type]
            rows = await pipe.execute()
        return [self._parse({_text(k): _text(v) for k, v in row.items()})[0] for row in rows if row]

    async def busy(
        self, usernames: list[str], start: datetime, end: datetime
    ) -> dict[str, list[Interval]]:
        """Each person's booked intervals overlapping [start, end)."""
        s, e = _epoch(start), _epoch(end)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in usernames:
                pipe.zrangebyscore(busy_key(name), s - MAX_SLOT_S, f"({e}", withscores=True)
            rows = await pipe.execute()
        out: dict[str, list[Interval]] = {}
        for name, row in zip(usernames, rows, strict=True):
            intervals = []
            for member, score in row:
                end_s, _, booking_id = _text(member).partition("|")
                if int(end_s) > s:
                    intervals.append(Interval(int(score), int(end_s), booking_id))
            out[name] = intervals
        return out
