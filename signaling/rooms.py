"""Consultation rooms: the record every node shares (Redis) and its state machine."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from redis.exceptions import WatchError

from signaling.errors import IllegalTransition, UnknownRoomError
from signaling.protocol import RoomInfo, RoomState

_KEY = "sb:room:"
#: Rooms in live state, for the sweep that ends consultations nobody came back to.
LIVE_SET = "sb:rooms:live"

#: Allowed room state transitions; anything else raises IllegalTransition.
TRANSITIONS: dict[RoomState, frozenset[RoomState]] = {
    RoomState.CREATED: frozenset({RoomState.LOBBY, RoomState.ENDED}),
    RoomState.LOBBY: frozenset({RoomState.LIVE, RoomState.ENDED}),
    RoomState.LIVE: frozenset({RoomState.ENDED}),
    RoomState.ENDED: frozenset(),
}


def check_transition(room_id: str, old: RoomState, new: RoomState) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"room {room_id}: cannot go from {old.value} to {new.value}")


class RoomRecord(BaseModel):
    id: str
    title: str = Field(min_length=1, max_length=200)
    topic: str | None = None
    state: RoomState = RoomState.CREATED
    created_at: float
    created_by: str | None = None
    starts_at: float | None = None
    ends_at: float | None = None
    booking_id: str | None = None
    node_id: str | None = None

    def info(self) -> RoomInfo:
        return RoomInfo(id=self.id, title=self.title, state=self.state)


def new_room_id() -> str:
    return "r-" + secrets.token_urlsafe(9)


# Compare-and-set of the state field: only moves if the stored state is still ``old``;
# keeps the set of live rooms in step. KEYS: 1 room, 2 live set.
_CAS_STATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local rec = cjson.decode(raw)
if rec['state'] ~= ARGV[1] then return 0 end
rec['state'] = ARGV[2]
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
if ARGV[2] == 'live' then
  redis.call('SADD', KEYS[2], ARGV[3])
else
  redis.call('SREM', KEYS[2], ARGV[3])
end
return 1
"""


class RoomDirectory:
    """Room records in Redis, shared by every node."""

    def __init__(self, redis: aioredis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._cas = redis.register_script(_CAS_STATE)

    async def create(
        self,
        *,
        title: str,
        topic: str | None = None,
        created_by: str | None = None,
        starts_at: float | None = None,
        ends_at: float | None = None,
        booking_id: str | None = None,
    ) -> RoomRecord:
        record = RoomRecord(
            id=new_room_id(),
            title=title,
            topic=topic,
            created_at=self._clock(),
            created_by=created_by,
            starts_at=starts_at,
            ends_at=ends_at,
            booking_id=booking_id,
        )
        await self._redis.set(_KEY + record.id, record.model_dump_json())
        return record

    async def get(self, room_id: str) -> RoomRecord | None:
        raw = await self._redis.get(_KEY + room_id)
        return None if raw is None else RoomRecord.model_validate_json(raw)

    async def get_many(self, room_ids: list[str]) -> dict[str, RoomRecord]:
        """The records of those ``room_ids`` that exist, in one round trip."""
        if not room_ids:
            return {}
        raws = await self._redis.mget([_KEY + room_id for room_id in room_ids])
        return {
            room_id: RoomRecord.model_validate_json(raw)
            for room_id, raw in zip(room_ids, raws, strict=True)
            if raw is not None
        }

    async def retitle(self, room_id: str, title: str) -> bool:
        """Replace a room's title (the retention purge takes the resident's name out)."""
        key = _KEY + room_id
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return False
                    record = RoomRecord.model_validate_json(raw).model_copy(update={"title": title})
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, record.model_dump_json(), keepttl=True)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def require(self, room_id: str) -> RoomRecord:
        record = await self.get(room_id)
        if record is None:
            raise UnknownRoomError(f"there is no consultation room {room_id!r}")
        return record

    async def live(self) -> list[str]:
        """Ids of the rooms in live state, on any node."""
        members = await self._redis.smembers(LIVE_SET)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def transition(self, room_id: str, new: RoomState) -> RoomRecord:
        """Move the room to ``new``, enforcing TRANSITIONS atomically across nodes."""
        while True:
            record = await self.require(room_id)
            check_transition(room_id, record.state, new)
            result = await self._cas(
                keys=[_KEY + room_id, LIVE_SET], args=[record.state.value, new.value, room_id]
            )
            if result == 1:
                return record.model_copy(update={"state": new})
            if result == -1:
                raise UnknownRoomError(f"there is no consultation room {room_id!r}")
            # Another node moved it first: re-read and re-check.
