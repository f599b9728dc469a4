"""The walk-in queue in Redis: tickets, staff presence, and the Lua scripts that assign.

Keys: ``sb:queue:t:{id}`` (hash), ``sb:queue:waiting`` (zset by join time),
``sb:queue:matched`` (zset), ``sb:presence`` and ``sb:presence:since`` (hashes),
``sb:queue:durations:{topic}`` (list of recent session lengths in seconds).

Assignment is one Lua script, so several server processes may dispatch at once
without giving one person two residents.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from scheduler.queue_models import Presence, Ticket, TicketState

#: How many recent session lengths per topic feed the wait estimate.
RECENT_SESSIONS = 20
#: Finished tickets stay readable this long (a page may poll once more).
FINISHED_TTL_S = 86400

_WAITING = "sb:queue:waiting"
_MATCHED = "sb:queue:matched"
_PRESENCE = "sb:presence"
_SINCE = "sb:presence:since"


def _ticket_key(ticket_id: str) -> str:
    return f"sb:queue:t:{ticket_id}"


def _durations_key(topic: str) -> str:
    return f"sb:queue:durations:{topic}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# KEYS: 1 ticket, 2 waiting, 3 presence, 4 since, 5 matched
# ARGV: 1 id, 2 now, 3 nc, 4 ni, 5 need (1|0), then counselor names, interpreter names
_ASSIGN = """
if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then return {0, 'gone'} end
local function pick(first, n)
  local best, best_since = nil, nil
  for k = first, first + n - 1 do
    local name = ARGV[k]
    if redis.call('HGET', KEYS[3], name) == 'available' then
      local since = tonumber(redis.call('HGET', KEYS[4], name) or '0')
      if best == nil or since < best_since then best, best_since = name, since end
    end
  end
  return best
end
local nc, ni = tonumber(ARGV[3]), tonumber(ARGV[4])
local c = pick(6, nc)
if not c then return {0, 'no_counselor'} end
local i = nil
if ARGV[5] == '1' then
  i = pick(6 + nc, ni)
  if not i then return {0, 'no_interpreter'} end
end
redis.call('HSET', KEYS[3], c, 'busy')
if i then redis.call('HSET', KEYS[3], i, 'busy') end
redis.call('HSET', KEYS[1], 'state', 'matched', 'counselor', c, 'interpreter', i or '',
           'matched_at', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
return {1, c, i or ''}
"""

# KEYS: 1 ticket
_DROP_INTERPRETER = """
if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then return 0 end
redis.call('HSET', KEYS[1], 'needs_interpreter', '0')
return 1
"""

# KEYS: 1 ticket, 2 waiting, 3 matched, 4 presence, 5 since, 6 durations
# ARGV: 1 id, 2 expected state, 3 new state, 4 now, 5 release staff (1|0), 6 duration s or '',
#       7 last index of the durations list to keep, 8 ttl of the finished ticket
_TICKET_TRANSITION = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[5] == '1' then
  for _, field in ipairs({'counselor', 'interpreter'}) do
    local who = redis.call('HGET', KEYS[1], field)
    if who and who ~= '' and redis.call('HGET', KEYS[4], who) == 'busy' then
      redis.call('HSET', KEYS[4], who, 'available')
      redis.call('HSET', KEYS[5], who, ARGV[4])
    end
  end
end
if ARGV[6] ~= '' then
  redis.call('LPUSH', KEYS[6], ARGV[6])
  redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[7]))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
return 1
"""

# KEYS: 1 presence, 2 since; ARGV: 1 user, 2 expected ('' = none), 3 new, 4 now
_PRESENCE_CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[3] == 'available' and cur ~= 'available' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
end
return 1
"""


class QueueStore:
    """Reads and atomic writes of tickets and presence; decisions are made in Lua."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._assign = redis.register_script(_ASSIGN)
        self._transition = redis.register_script(_TICKET_TRANSITION)
        self._presence_cas = redis.register_script(_PRESENCE_CAS)
        self._drop_interpreter = redis.register_script(_DROP_INTERPRETER)

    # ------------------------------------------------------------- presence
    async def presence(self, username: str) -> Presence | None:
        """The stored presence, or None if the person never set one (away)."""
        raw = await self._redis.hget(_PRESENCE, username)
        return Presence(_text(raw)) if raw else None

    async def presences(self) -> dict[str, Presence]:
        raw = await self._redis.hgetall(_PRESENCE)
        return {_text(k): Presence(_text(v)) for k, v in raw.items()}

    async def swap_presence(
        self, username: str, expected: Presence | None, new: Presence, now: float
    ) -> bool:
        """Set ``new`` if the stored presence is still ``expected``."""
        done = await self._presence_cas(
            keys=[_PRESENCE, _SINCE],
            args=[username, expected.value if expected else "", new.value, now],
        )
        return int(done) == 1

    # --------------------------------------------------------------- tickets
    async def add(self, ticket: Ticket, key_hash: str) -> None:
        fields = {k: str(v) for k, v in ticket.model_dump(exclude_none=True).items()}
        fields["needs_interpreter"] = "1" if ticket.needs_interpreter else "0"
        fields["key_hash"] = key_hash
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_ticket_key(ticket.id), mapping=fields)  # type: ignore[arg-type]
            pipe.zadd(_WAITING, {ticket.id: ticket.joined_at})
            await pipe.execute()

    async def get(self, ticket_id: str) -> Ticket | None:
        raw = await self._redis.hgetall(_ticket_key(ticket_id))
        return self._parse(raw) if raw else None

    async def key_hash(self, ticket_id: str) -> str | None:
        raw = await self._redis.hget(_ticket_key(ticket_id), "key_hash")
        return None if raw is None else _text(raw)

    async def touch(self, ticket_id: str, now: float) -> None:
        await self._redis.hset(_ticket_key(ticket_id), "last_seen", str(now))

    async def drop_interpreter(self, ticket_id: str) -> bool:
        """A waiting resident goes on without an interpreter; False if no longer waiting."""
        return int(await self._drop_interpreter(keys=[_ticket_key(ticket_id)])) == 1

    async def set_room(self, ticket_id: str, room_id: str) -> None:
        await self._redis.hset(_ticket_key(ticket_id), "room_id", room_id)

    async def transition(
        self, ticket: Ticket, new: TicketState, *, now: float, duration_s: int | None
    ) -> int:
        """1 moved, 0 the stored state is no longer ``ticket.state``, -1 no such ticket.

        Leaving ``matched`` frees the counselor and interpreter again.
        """
        result = await self._transition(
            keys=[
                _ticket_key(ticket.id), _WAITING, _MATCHED, _PRESENCE, _SINCE,
                _durations_key(ticket.topic),
            ],
            args=[
                ticket.id, ticket.state.value, new.value, now,
                "1" if ticket.state is TicketState.MATCHED else "0",
                "" if duration_s is None else str(duration_s), RECENT_SESSIONS - 1,
                FINISHED_TTL_S,
            ],
        )  # fmt: skip
        return int(result)

    async def assign(
        self, ticket: Ticket, *, now: float, counselors: list[str], interpreters: list[str]
    ) -> tuple[str, str | None] | None:
        """Give ``ticket`` the longest-idle available counselor (and interpreter), or None."""
        raw = await self._assign(
            keys=[_ticket_key(ticket.id), _WAITING, _PRESENCE, _SINCE, _MATCHED],
            args=[
                ticket.id, now, len(counselors), len(interpreters),
                "1" if ticket.needs_interpreter else "0", *counselors, *interpreters,
            ],
        )  # fmt: skip
        status, *rest = raw
        if int(status) != 1:
            return None
        return _text(rest[0]), _text(rest[1]) or None

    async def waiting(self) -> list[Ticket]:
        """Waiting tickets, longest-waiting first."""
        return await self._load(_WAITING)

    async def matched(self) -> list[Ticket]:
        return await self._load(_MATCHED)

    async def durations(self, topic: str) -> list[float]:
        """The recent session lengths of ``topic``, newest first."""
        return [float(v) for v in await self._redis.lrange(_durations_key(topic), 0, -1)]

    async def _load(self, index: str) -> list[Ticket]:
        """The tickets of a sorted-set ``index``, in its order, in two round trips."""
        ids: list[bytes] = await self._redis.zrange(index, 0, -1)  # type: ignore[assignment]
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket_id in ids:
                pipe.hgetall(_ticket_key(_text(ticket_id)))
            rows = await pipe.execute()
        return [self._parse(row) for row in rows if row]

    @staticmethod
    def _parse(raw: Mapping[bytes | str, bytes | str]) -> Ticket:
        f = {_text(k): _text(v) for k, v in raw.items()}
        return Ticket(
            id=f["id"],
            state=TicketState(f["state"]),
            name=f["name"],
            language=f["language"],
            topic=f["topic"],
            needs_interpreter=f["needs_interpreter"] == "1",
            joined_at=float(f["joined_at"]),
            last_seen=float(f["last_seen"]),
            counselor=f.get("counselor") or None,
            interpreter=f.get("interpreter") or None,
            room_id=f.get("room_id") or None,
            matched_at=float(f["matched_at"]) if f.get("matched_at") else None,
        )
