"""Events that cross nodes: knocks, lobby changes, room states, queue changes.

A room lives on one node, but a counselor's dashboard may be served by any
other. Whatever happens to a room is published here and every node hears it,
so a dashboard learns of a knock the moment it happens wherever the room is.

The seam is as small as python-socketio's pub/sub managers: a backend only
publishes bytes and listens for bytes (``PubSubBackend``); ``RedisPubSub`` is
the one we run. ``NodeEvents`` puts typed events (one discriminated union) on
top and fans what it hears out to local subscribers through bounded queues (a
slow reader loses the oldest events, never stalls the others).

Events carry ids and counts, never names: a listener that needs more reads it
through an authorised REST call. Publishing never fails a request: an event
lost while Redis is away is logged, and dashboards still poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Final, Literal, Protocol

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kernel.taskset import TaskSet, raise_if_cancelling
from signaling.protocol import RoomState

logger = logging.getLogger(__name__)

CHANNEL: Final = "sb:events"
#: Events a subscriber may fall behind by before it loses the oldest.
QUEUE_SIZE: Final = 64
#: Events waiting to be published (while Redis is slow or away) before the oldest is lost.
OUTBOX_SIZE: Final = 256
PUBLISH_TIMEOUT_S: Final = 2.0
#: Listener reconnection: first pause, doubling up to the cap.
RETRY_FIRST_S: Final = 0.25
RETRY_CAP_S: Final = 2.0


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str = ""
    ts: float = Field(default_factory=time.time)


class KnockEvent(_Event):
    """Someone arrived in a room's lobby."""

    type: Literal["knock"] = "knock"
    room_id: str
    waiting: int


class LobbyEvent(_Event):
    """The number of people waiting in a room's lobby changed."""

    type: Literal["lobby_changed"] = "lobby_changed"
    room_id: str
    waiting: int


class RoomStateEvent(_Event):
    type: Literal["room_state"] = "room_state"
    room_id: str
    state: RoomState


class QueueEvent(_Event):
    """The walk-in queue changed (someone joined, left, was matched or finished)."""

    type: Literal["queue_changed"] = "queue_changed"


NodeEvent = Annotated[
    KnockEvent | LobbyEvent | RoomStateEvent | QueueEvent, Field(discriminator="type")
]
_adapter: TypeAdapter[NodeEvent] = TypeAdapter(NodeEvent)


def parse_event(raw: bytes | str) -> NodeEvent:
    return _adapter.validate_json(raw)


class EventSink(Protocol):
    """What publishers need (signaling's lobby and lifecycle, the queue's REST).

    ``publish`` never waits: the event is queued and sent by the owner's task, so a
    publisher holding a room's lock is never held up by Redis."""

    def publish(self, event: NodeEvent) -> None: ...


class PubSubBackend(Protocol):
    """The whole backend seam: publish bytes, listen for bytes."""

    async def publish(self, data: bytes) -> None: ...

    def listen(self, on_ready: Callable[[], None]) -> AsyncIterator[bytes]:
        """Messages as they arrive, ``on_ready()`` once subscribed; raises when the
        connection is lost (the caller retries)."""
        ...


class RedisPubSub:
    """Redis PUBLISH/SUBSCRIBE on one channel."""

    def __init__(self, redis: aioredis.Redis, channel: str = CHANNEL) -> None:
        self._redis = redis
        self._channel = channel

    async def publish(self, data: bytes) -> None:
        await self._redis.publish(self._channel, data)

    async def listen(self, on_ready: Callable[[], None]) -> AsyncIterator[bytes]:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            while True:
                raise_if_cancelling()  # redis-py may swallow a cancellation
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message.get("type") == "subscribe":
                    on_ready()  # the server confirmed: from now on nothing is missed
                elif message.get("type") == "message":
                    data = message["data"]
                    yield data if isinstance(data, bytes) else str(data).encode()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2


class Subscription:
    """One local listener: an async iterator of events that ends when closed."""

    def __init__(self, owner: NodeEvents, maxsize: int) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.closed = False

    def put(self, event: NodeEvent | None) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()  # lose the oldest, never block the listener
                self.dropped += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._owner._forget(self)
        self.put(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> NodeEvent:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def next(self, quiet_s: float) -> NodeEvent | None:
        """The next event, or None after ``quiet_s`` seconds of quiet or once closed."""
        try:
            async with asyncio.timeout(quiet_s):
                return await self.__anext__()
        except (TimeoutError, StopAsyncIteration):
            return None


class NodeEvents:
    """This node's publisher and listener on the cross-node event channel."""

    def __init__(self, backend: PubSubBackend, *, node_id: str) -> None:
        self._backend = backend
        self.node_id = node_id
        self._subscriptions: set[Subscription] = set()
        self._tasks = TaskSet(f"node events {node_id}")
        self._outbox: asyncio.Queue[NodeEvent] = asyncio.Queue(OUTBOX_SIZE)
        #: set while the listener is subscribed
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._tasks.spawn(self._listen_forever(), name="listener")
        self._tasks.spawn(self._publish_forever(), name="publisher")

    async def aclose(self) -> None:
        self.close_subscriptions()
        await self._tasks.aclose()

    def close_subscriptions(self) -> None:
        """End every local subscription (a stop must not wait on open event streams)."""
        for subscription in list(self._subscriptions):
            subscription.close()

    # ------------------------------------------------------------ publish
    def publish(self, event: NodeEvent) -> None:
        """Deliver ``event`` to this node's subscribers now and queue it for every other
        node (the oldest queued is lost if Redis has been away for a while).

        Local delivery does not round-trip through Redis: a dashboard on the room's own
        node hears of it even while the listener is between reconnections."""
        stamped = event.model_copy(update={"node_id": self.node_id})
        self._deliver(stamped)
        while True:
            try:
                self._outbox.put_nowait(stamped)
                return
            except asyncio.QueueFull:
                lost = self._outbox.get_nowait()
                logger.warning("node %s: event %s not published", self.node_id, lost.type)

    async def _publish_forever(self) -> None:
        while True:
            raise_if_cancelling()
            event = await self._outbox.get()
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await self._backend.publish(event.model_dump_json().encode())
            except (OSError, TimeoutError, aioredis.RedisError) as exc:
                logger.warning("node %s: event %s not published: %s", self.node_id, event.type, exc)

    # ---------------------------------------------------------- subscribe
    def subscribe(self, maxsize: int = QUEUE_SIZE) -> Subscription:
        subscription = Subscription(self, maxsize)
        self._subscriptions.add(subscription)
        return subscription

    def _deliver(self, event: NodeEvent) -> None:
        for subscription in list(self._subscriptions):
            subscription.put(event)

    def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def _listen_forever(self) -> None:
        pause = RETRY_FIRST_S

        def ready() -> None:
            nonlocal pause
            pause = RETRY_FIRST_S
            self.connected.set()
            logger.info("node %s: listening for events from every node", self.node_id)

        while True:
            raise_if_cancelling()
            try:
                async for raw in self._backend.listen(ready):
                    try:
                        event = parse_event(raw)
                    except ValidationError:
                        logger.warning("node %s: ignored a malformed event", self.node_id)
                        continue
                    if event.node_id != self.node_id:  # ours went out in publish()
                        self._deliver(event)
            except (OSError, TimeoutError, aioredis.RedisError) as exc:
                self.connected.clear()
                logger.warning(
                    "node %s: event listener lost Redis (%s); again in %.2f s",
                    self.node_id,
                    exc,
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_CAP_S)
