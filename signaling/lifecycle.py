"""The rooms open on this node: opening, closing, the idle timer, and the orphan sweep.

A room opens here when its first participant connects (the node claims it in
Redis) and closes when the last one leaves. A *live* consultation left empty
ends after the grace period; so does one nobody came back to after its node
stopped or died (the sweep, run by every node, ends live rooms that no live
node holds once they have been orphaned for the grace period).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from kernel.taskset import TaskSet, raise_if_cancelling
from signaling.admission import AdmissionStore
from signaling.errors import IllegalTransition, UnknownRoomError
from signaling.extensions import ExtensionHooks
from signaling.live import LiveRoom, ParticipantState
from signaling.media_port import MediaEvents, MediaRoomFactory
from signaling.messenger import Messenger
from signaling.node_events import EventSink, RoomStateEvent
from signaling.placement import NodePlacement
from signaling.protocol import ErrorCode, RequestError, RoomMoved, RoomState, RoomStateChanged
from signaling.rooms import RoomDirectory

logger = logging.getLogger(__name__)

#: room id -> when a sweep first saw it held by no live node (Unix seconds)
_ORPHANED = "sb:rooms:orphaned"


class LiveRooms:
    """The registry of rooms open on this node, and everything that opens or closes them."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        rooms: RoomDirectory,
        admissions: AdmissionStore,
        media_factory: MediaRoomFactory,
        events_for: Callable[[str], MediaEvents],
        hooks: ExtensionHooks,
        messenger: Messenger,
        placement: NodePlacement | None,
        events: EventSink | None = None,
        grace_s: float,
        sweep_interval_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._rooms = rooms
        self._admissions = admissions
        self._media_factory = media_factory
        self._events_for = events_for
        self._hooks = hooks
        self._messenger = messenger
        self._placement = placement
        self._events = events
        self._grace_s = grace_s
        self._sweep_interval_s = sweep_interval_s
        self._clock = clock
        self._live: dict[str, LiveRoom] = {}
        #: room id -> set when its close on this node is done (present while it runs)
        self._closing: dict[str, asyncio.Event] = {}
        self._open_lock = asyncio.Lock()
        self._tasks = TaskSet("live rooms")
        if placement is not None:
            placement.on_lost(self._room_lost)

    # ------------------------------------------------------------ queries
    def get(self, room_id: str) -> LiveRoom | None:
        return self._live.get(room_id)

    def all(self) -> dict[str, LiveRoom]:
        return dict(self._live)

    def task_names(self) -> list[str]:
        return self._tasks.names()

    # ---------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._tasks.spawn(self._sweep_forever(), name="orphan sweep")

    async def aclose(self) -> None:
        """Let go of every room (not an end: the consultations go on elsewhere or later)."""
        for room in list(self._live.values()):
            await self.close(room, final=False)
        await self._tasks.aclose()

    async def open(self, room_id: str) -> LiveRoom:
        """The room open on this node, opening (and claiming) it if needed.

        A room still closing here is waited for first: its close releases the claim and
        lets extensions drop what they keep by room id, which must not happen to the
        room opened in its place.
        """
        while True:
            closing = self._closing.get(room_id)
            if closing is not None:
                await closing.wait()
            async with self._open_lock:
                if room_id in self._closing:
                    continue  # closed again while this one waited for the lock
                return await self._open_locked(room_id)

    async def _open_locked(self, room_id: str) -> LiveRoom:
        room = self._live.get(room_id)
        if room is not None:
            return room
        if self._placement is not None:
            claim = await self._placement.claim(room_id)
            if claim.node_id != self._placement.node_id:
                raise RequestError(
                    ErrorCode.ROOM_ELSEWHERE,
                    f"This consultation is hosted on another server ({claim.node_id}). "
                    "Connect through the join step; if it keeps happening, tell the "
                    "service center.",
                )
        try:
            record = await self._rooms.require(room_id)
        except UnknownRoomError:
            if self._placement is not None:
                await self._placement.release(room_id)
            raise
        room = LiveRoom(
            record=record, media=self._media_factory(room_id, self._events_for(room_id))
        )
        self._live[room_id] = room
        await self._redis.hdel(_ORPHANED, room_id)
        await self._hooks.room_opened(room)
        logger.info("room %s: opened on this node", room_id)
        return room

    async def close(self, room: LiveRoom, *, final: bool) -> None:
        """Close the room on this node; ``final`` when the consultation itself ended."""
        if self._live.get(room.id) is not room:
            return
        del self._live[room.id]
        done = self._closing[room.id] = asyncio.Event()
        try:
            await self._close(room, final=final)
        finally:
            del self._closing[room.id]
            done.set()

    async def _close(self, room: LiveRoom, *, final: bool) -> None:
        timer, room.idle_timer = room.idle_timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self._tasks.cancel(timer)
        await self._hooks.room_closed(room, final=final)
        await room.media.aclose()
        if self._placement is not None:
            try:
                await self._placement.release(room.id)
            except (OSError, aioredis.RedisError) as exc:
                # Redis is away: the claim lapses by itself within the node TTL.
                logger.warning("room %s: claim not released (%s); it lapses", room.id, exc)
        if final:
            await self._admissions.forget(room.id)
        logger.info("room %s: closed on this node%s", room.id, " (ended)" if final else "")

    async def set_state(self, room: LiveRoom, state: RoomState) -> None:
        """Move the room (atomically in Redis) and tell everyone, lobby included."""
        try:
            room.record = await self._rooms.transition(room.id, state)
        except IllegalTransition as exc:
            raise RequestError(ErrorCode.NOT_ALLOWED, str(exc)) from exc
        await self._messenger.broadcast(room, RoomStateChanged(state=state), include_lobby=True)
        if self._events is not None:
            self._events.publish(RoomStateEvent(room_id=room.id, state=state))

    # ------------------------------------------------------------- fencing
    async def _room_lost(self, room_id: str) -> None:
        """The room's claim moved to another node (this one was cut off or stalled):
        drop its peers here and send everyone back through the join step."""
        room = self._live.get(room_id)
        if room is None:
            return
        logger.warning("room %s: moved to another node; dropping its peers here", room_id)
        async with room.lock:
            people = list(room.participants.values())
            for participant in people:
                await self._messenger.send(participant, RoomMoved())
                participant.set_state(ParticipantState.GONE)
            room.participants.clear()
            await self.close(room, final=False)
        for participant in people:
            await self._messenger.drop(participant.sid)

    # ------------------------------------------------------- empty rooms
    async def maybe_idle(self, room: LiveRoom) -> None:
        """Close an empty room; a live one ends only after the grace period."""
        if room.participants or self._live.get(room.id) is not room:
            return
        if room.record.state is RoomState.LIVE:
            if room.idle_timer is None or room.idle_timer.done():
                room.idle_timer = self._tasks.spawn(
                    self._end_when_idle(room), name=f"room {room.id} idle timer"
                )
        else:
            await self.close(room, final=False)

    def cancel_idle(self, room: LiveRoom) -> None:
        timer, room.idle_timer = room.idle_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()  # the task set reaps it

    async def _end_when_idle(self, room: LiveRoom) -> None:
        await asyncio.sleep(self._grace_s)
        async with room.lock:
            if room.idle_timer is not asyncio.current_task() or room.participants:
                return
            room.idle_timer = None
            logger.info("room %s: empty for %.0f s, ending", room.id, self._grace_s)
            try:
                room.record = await self._rooms.transition(room.id, RoomState.ENDED)
            except (IllegalTransition, UnknownRoomError) as exc:
                # Ended elsewhere meanwhile (a booking was cancelled): close all the same.
                logger.info("room %s: already over (%s)", room.id, exc)
        await self.close(room, final=True)

    # ------------------------------------------------------------ orphans
    async def sweep_orphans(self) -> list[str]:
        """End live consultations that no live node has held for the grace period."""
        ended: list[str] = []
        now = self._clock()
        for room_id in await self._rooms.live():
            if room_id in self._live:
                continue
            if self._placement is not None and await self._placement.holder(room_id):
                await self._redis.hdel(_ORPHANED, room_id)
                continue
            since_raw = await self._redis.hget(_ORPHANED, room_id)
            if since_raw is None:
                await self._redis.hsetnx(_ORPHANED, room_id, now)
                continue
            if now - float(since_raw) < self._grace_s:
                continue
            try:
                await self._rooms.transition(room_id, RoomState.ENDED)
                ended.append(room_id)
                logger.info("room %s: nobody came back for %.0f s, ended", room_id, self._grace_s)
            except (IllegalTransition, UnknownRoomError):
                pass
            await self._redis.hdel(_ORPHANED, room_id)
            await self._admissions.forget(room_id)
        return ended

    async def _sweep_forever(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                await self.sweep_orphans()
            except (OSError, aioredis.RedisError):
                logger.warning("orphan sweep failed; trying again later", exc_info=True)
            await asyncio.sleep(self._sweep_interval_s)
