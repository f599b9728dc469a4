"""The walk-in queue: residents wait per topic and language; free counselors get the next one.

Like a call center: counselors (and interpreters) set themselves available or away; the
dispatcher offers the longest-waiting connected resident to the longest-idle matching
counselor, plus an interpreter when the resident needs one. Assignment is one Lua script,
so several server processes may dispatch at once without giving one person two residents.

A resident's page polls its ticket; each poll is a heartbeat. A resident who stops polling
is skipped by the dispatcher but keeps their place for ``GRACE_S`` (2 minutes); after that
the ticket expires.

Keys: ``sb:queue:t:{id}`` (hash), ``sb:queue:waiting`` (zset by join time),
``sb:queue:matched`` (zset), ``sb:presence`` and ``sb:presence:since`` (hashes),
``sb:queue:durations:{topic}`` (list of recent session lengths in seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from enum import StrEnum

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from kernel.taskset import TaskSet, raise_if_cancelling
from scheduler.errors import BookingKeyError, IllegalTransition, UnknownTicketError
from scheduler.models import Language
from scheduler.staff import StaffMember, StaffStore
from scheduler.topics import TopicStore
from signaling.protocol import Role
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

log = logging.getLogger(__name__)

GRACE_S = 120.0
DISCONNECTED_AFTER_S = 15.0
RECENT_SESSIONS = 20
DISPATCH_INTERVAL_S = 1.0

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


class Presence(StrEnum):
    AWAY = "away"
    AVAILABLE = "available"
    BUSY = "busy"


PRESENCE_TRANSITIONS: dict[Presence, frozenset[Presence]] = {
    Presence.AWAY: frozenset({Presence.AVAILABLE, Presence.AWAY}),
    Presence.AVAILABLE: frozenset({Presence.AWAY, Presence.BUSY, Presence.AVAILABLE}),
    Presence.BUSY: frozenset({Presence.AVAILABLE, Presence.AWAY}),
}


class TicketState(StrEnum):
    WAITING = "waiting"
    MATCHED = "matched"
    DONE = "done"
    LEFT = "left"
    EXPIRED = "expired"


TICKET_TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    TicketState.WAITING: frozenset({TicketState.MATCHED, TicketState.LEFT, TicketState.EXPIRED}),
    TicketState.MATCHED: frozenset({TicketState.DONE, TicketState.LEFT}),
    TicketState.DONE: frozenset(),
    TicketState.LEFT: frozenset(),
    TicketState.EXPIRED: frozenset(),
}


class QueueJoinRequest(BaseModel):
    """``POST /api/queue``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=80)
    language: Language
    topic: str = Field(description="topic id from GET /api/topics")
    needs_interpreter: bool | None = Field(
        default=None, description="default: true unless the resident speaks Korean"
    )


class Ticket(BaseModel):
    id: str
    state: TicketState
    name: str
    language: Language
    topic: str
    needs_interpreter: bool
    joined_at: float
    last_seen: float
    counselor: str | None = None
    interpreter: str | None = None
    room_id: str | None = None
    matched_at: float | None = None


class TicketView(BaseModel):
    """What a resident's queue page polls."""

    id: str
    state: TicketState
    topic: str
    language: Language
    position: int | None = Field(description="1 = next; None once no longer waiting")
    estimated_wait_s: int | None = Field(
        description="from recent session lengths; None when no counselor is on duty"
    )
    join_url: str | None = None
    ticket_key: str | None = Field(default=None, description="returned once when joining")


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

# KEYS: 1 ticket, 2 waiting, 3 matched, 4 presence, 5 since, 6 durations
# ARGV: 1 id, 2 expected state, 3 new state, 4 now, 5 release staff (1|0), 6 duration s or '',
#       7 last index of the durations list to keep
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
redis.call('EXPIRE', KEYS[1], 86400)
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


class WalkInQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        staff: StaffStore,
        topics: TopicStore,
        rooms: RoomDirectory,
        tokens: TokenService,
        base_url: str,
        clock: Callable[[], float] = time.time,
        join_ttl_s: float = 2 * 3600,
    ) -> None:
        self._redis = redis
        self._staff = staff
        self._topics = topics
        self._rooms = rooms
        self._tokens = tokens
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._join_ttl_s = join_ttl_s
        self._assign = redis.register_script(_ASSIGN)
        self._transition = redis.register_script(_TICKET_TRANSITION)
        self._presence_cas = redis.register_script(_PRESENCE_CAS)
        self._tasks = TaskSet("walk-in queue")
        self._dispatcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------- presence
    async def presence(self, username: str) -> Presence:
        raw = await self._redis.hget(_PRESENCE, username)
        return Presence(_text(raw)) if raw else Presence.AWAY

    async def presences(self) -> dict[str, Presence]:
        raw = await self._redis.hgetall(_PRESENCE)
        return {_text(k): Presence(_text(v)) for k, v in raw.items()}

    async def set_presence(self, username: str, new: Presence) -> Presence:
        """Staff set themselves available or away; ``busy`` is only set by the dispatcher."""
        if new is Presence.BUSY:
            raise IllegalTransition("busy is set by the queue when a resident is assigned")
        while True:
            raw = await self._redis.hget(_PRESENCE, username)
            old = Presence(_text(raw)) if raw else Presence.AWAY
            if new not in PRESENCE_TRANSITIONS[old]:
                raise IllegalTransition(f"{username}: cannot go from {old.value} to {new.value}")
            done = await self._presence_cas(
                keys=[_PRESENCE, _SINCE],
                args=[username, _text(raw) if raw else "", new.value, self._clock()],
            )
            if int(done) == 1:
                log.info("presence %s: %s -> %s", username, old.value, new.value)
                self._wake.set()
                return new

    # --------------------------------------------------------------- tickets
    async def join(self, request: QueueJoinRequest) -> tuple[Ticket, str]:
        topic = await self._topics.require(request.topic)
        now = self._clock()
        need = (
            request.language != "ko"
            if request.needs_interpreter is None
            else request.needs_interpreter
        )
        ticket = Ticket(
            id="q-" + secrets.token_urlsafe(9),
            state=TicketState.WAITING,
            name=request.name,
            language=request.language,
            topic=topic.id,
            needs_interpreter=need,
            joined_at=now,
            last_seen=now,
        )
        key = secrets.token_urlsafe(18)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _ticket_key(ticket.id),
                mapping={
                    **{k: str(v) for k, v in ticket.model_dump(exclude_none=True).items()},
                    "needs_interpreter": "1" if need else "0",
                    "key_hash": hashlib.sha256(key.encode()).hexdigest(),
                },
            )
            pipe.zadd(_WAITING, {ticket.id: now})
            await pipe.execute()
        log.info(
            "queue %s: %s joined for %s (%s)", ticket.id, ticket.name, topic.id, ticket.language
        )
        self._wake.set()
        return ticket, key

    async def get(self, ticket_id: str) -> Ticket:
        raw = await self._redis.hgetall(_ticket_key(ticket_id))
        if not raw:
            raise UnknownTicketError(
                f"there is no queue ticket {ticket_id!r}; join the queue again"
            )
        return self._parse({_text(k): _text(v) for k, v in raw.items()})

    @staticmethod
    def _parse(f: dict[str, str]) -> Ticket:
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

    async def authorize(self, ticket_id: str, key: str | None) -> Ticket:
        key_hash = await self._redis.hget(_ticket_key(ticket_id), "key_hash")
        if key_hash is None:
            raise UnknownTicketError(
                f"there is no queue ticket {ticket_id!r}; join the queue again"
            )
        digest = hashlib.sha256((key or "").encode()).hexdigest()
        if not key or not hmac.compare_digest(digest, _text(key_hash)):
            raise BookingKeyError("this queue ticket needs its key; reopen the queue page")
        return await self.get(ticket_id)

    async def heartbeat(self, ticket: Ticket) -> Ticket:
        """The resident's page is still there (each poll)."""
        if ticket.state in (TicketState.WAITING, TicketState.MATCHED):
            now = self._clock()
            await self._redis.hset(_ticket_key(ticket.id), "last_seen", str(now))
            ticket = ticket.model_copy(update={"last_seen": now})
        return ticket

    async def transition(self, ticket: Ticket, new: TicketState) -> Ticket:
        while True:
            if new not in TICKET_TRANSITIONS[ticket.state]:
                raise IllegalTransition(
                    f"queue ticket {ticket.id} is {ticket.state.value}; "
                    f"it cannot become {new.value}"
                )
            now = self._clock()
            duration = ""
            if new is TicketState.DONE and ticket.matched_at is not None:
                duration = str(int(max(0.0, now - ticket.matched_at)))
            result = await self._transition(
                keys=[
                    _ticket_key(ticket.id), _WAITING, _MATCHED, _PRESENCE, _SINCE,
                    _durations_key(ticket.topic),
                ],
                args=[
                    ticket.id, ticket.state.value, new.value, now,
                    "1" if ticket.state is TicketState.MATCHED else "0", duration,
                    RECENT_SESSIONS - 1,
                ],
            )  # fmt: skip
            if int(result) == 1:
                log.info("queue %s: %s -> %s", ticket.id, ticket.state.value, new.value)
                self._wake.set()
                return ticket.model_copy(update={"state": new})
            ticket = await self.get(ticket.id)

    async def waiting(self) -> list[Ticket]:
        """Waiting tickets, longest-waiting first."""
        ids = await self._redis.zrange(_WAITING, 0, -1)
        return await self._load([_text(i) for i in ids])  # type: ignore[arg-type]

    async def matched(self) -> list[Ticket]:
        ids = await self._redis.zrange(_MATCHED, 0, -1)
        return await self._load([_text(i) for i in ids])  # type: ignore[arg-type]

    async def _load(self, ids: list[str]) -> list[Ticket]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket_id in ids:
                pipe.hgetall(_ticket_key(ticket_id))
            rows = await pipe.execute()
        return [self._parse({_text(k): _text(v) for k, v in row.items()}) for row in rows if row]

    # ---------------------------------------------------------- where am I
    async def recent_session_s(self, topic: str) -> float:
        values = await self._redis.lrange(_durations_key(topic), 0, -1)
        if values:
            return sum(float(v) for v in values) / len(values)
        known = await self._topics.get(topic)
        return float(known.slot_minutes * 60 if known else 20 * 60)

    async def view(self, ticket: Ticket, *, key: str | None = None) -> TicketView:
        position: int | None = None
        wait: int | None = None
        join_url: str | None = None
        if ticket.state is TicketState.WAITING:
            queue = await self.waiting()
            ahead = sum(
                1 for t in queue if t.topic == ticket.topic and t.joined_at < ticket.joined_at
            )
            position = ahead + 1
            staff = await self._staff.list()
            presences = await self.presences()
            counselors = [m.username for m in staff if _serves(m, ticket.topic)]
            on_duty = [
                u for u in counselors if presences.get(u, Presence.AWAY) is not Presence.AWAY
            ]
            free = [u for u in counselors if presences.get(u) is Presence.AVAILABLE]
            if on_duty:
                rounds = max(0, ahead + 1 - len(free)) / len(on_duty)
                wait = int(rounds * await self.recent_session_s(ticket.topic))
        elif ticket.state is TicketState.MATCHED and ticket.room_id:
            token = self._tokens.issue_join(
                room_id=ticket.room_id, role=Role.RESIDENT, name=ticket.name,
                language=ticket.language, ttl_s=self._join_ttl_s,
            )  # fmt: skip
            join_url = f"{self._base_url}/join/{ticket.room_id}?t={token}"
        return TicketView(
            id=ticket.id, state=ticket.state, topic=ticket.topic, language=ticket.language,
            position=position, estimated_wait_s=wait, join_url=join_url, ticket_key=key,
        )  # fmt: skip

    def staff_join_url(self, ticket: Ticket, member: StaffMember) -> str | None:
        if ticket.room_id is None:
            return None
        role = Role.INTERPRETER if member.role is Role.INTERPRETER else Role.COUNSELOR
        language: str = ticket.language if role is Role.INTERPRETER else "ko"
        if language not in member.languages:
            language = member.languages[0]
        token = self._tokens.issue_join(
            room_id=ticket.room_id, role=role, name=member.display_name,
            language=language, ttl_s=self._join_ttl_s,
        )  # fmt: skip
        return f"{self._base_url}/join/{ticket.room_id}?t={token}"

    # ------------------------------------------------------------- dispatch
    async def expire_stale(self) -> list[str]:
        """Tickets whose resident has been gone longer than the grace period expire."""
        now = self._clock()
        expired = []
        for ticket in await self.waiting():
            if now - ticket.last_seen > GRACE_S:
                with contextlib.suppress(IllegalTransition):
                    await self.transition(ticket, TicketState.EXPIRED)
                    expired.append(ticket.id)
        return expired

    async def dispatch_once(self) -> list[Ticket]:
        """Offer waiting, connected residents (oldest first) to free matching staff."""
        queue = await self.waiting()
        if not queue:
            return []
        staff = await self._staff.list()
        presences = await self.presences()
        now = self._clock()
        matched = []
        for ticket in queue:
            if now - ticket.last_seen > DISCONNECTED_AFTER_S:
                continue  # keeps its place, but cannot answer an offer now
            counselors = [
                m.username for m in staff
                if _serves(m, ticket.topic) and presences.get(m.username) is Presence.AVAILABLE
            ]  # fmt: skip
            interpreters = [
                m.username for m in staff
                if m.role is Role.INTERPRETER and ticket.language in m.languages
                and presences.get(m.username) is Presence.AVAILABLE
            ]  # fmt: skip
            if not counselors or (ticket.needs_interpreter and not interpreters):
                continue
            raw = await self._assign(
                keys=[_ticket_key(ticket.id), _WAITING, _PRESENCE, _SINCE, _MATCHED],
                args=[
                    ticket.id, now, len(counselors), len(interpreters),
                    "1" if ticket.needs_interpreter else "0", *counselors, *interpreters,
                ],
            )  # fmt: skip
            status, *rest = raw
            if int(status) != 1:
                continue
            counselor, interpreter = _text(rest[0]), _text(rest[1]) or None
            presences[counselor] = Presence.BUSY
            if interpreter:
                presences[interpreter] = Presence.BUSY
            ticket = ticket.model_copy(
                update={
                    "state": TicketState.MATCHED, "counselor": counselor,
                    "interpreter": interpreter, "matched_at": now,
                }
            )  # fmt: skip
            ticket = await self._open_room(ticket)
            matched.append(ticket)
        return matched

    async def _open_room(self, ticket: Ticket) -> Ticket:
        try:
            room = await self._rooms.create(
                title=f"Walk-in · {ticket.name}", topic=ticket.topic, created_by=ticket.counselor
            )
            await self._redis.hset(_ticket_key(ticket.id), "room_id", room.id)
        except Exception:
            log.exception("queue %s: could not open a room; releasing staff", ticket.id)
            await self.transition(ticket, TicketState.LEFT)
            raise
        log.info(
            "queue %s: matched with %s%s in room %s", ticket.id, ticket.counselor,
            f" and {ticket.interpreter}" if ticket.interpreter else "", room.id,
        )  # fmt: skip
        return ticket.model_copy(update={"room_id": room.id})

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Run expiry and dispatch in the background until ``aclose()``."""
        if self._dispatcher is None:
            self._dispatcher = self._tasks.spawn(self._run(), name="dispatch")

    async def _run(self) -> None:
        while True:
            # redis-py may absorb a cancellation and return normally: check each turn.
            raise_if_cancelling()
            try:
                await self.expire_stale()
                await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue dispatch failed; retrying")
            raise_if_cancelling()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DISPATCH_INTERVAL_S):
                    await self._wake.wait()

    async def aclose(self) -> None:
        self._dispatcher = None
        await self._tasks.aclose()


_ON_DUTY = (Presence.AVAILABLE, Presence.BUSY)


def _serves(member: StaffMember, topic: str) -> bool:
    return member.role is Role.COUNSELOR and topic in member.topics
