"""Cross-node events on real Redis: every node hears every node, and the listener
survives Redis going away and coming back (its own redis-server, stopped and restarted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from signaling.node_events import KnockEvent, NodeEvents, QueueEvent, RedisPubSub, RoomStateEvent
from signaling.protocol import RoomState
from tests.support.redis_process import REDIS_SERVER, RedisProcess


async def test_every_node_hears_every_node(redis: aioredis.Redis) -> None:
    a = NodeEvents(RedisPubSub(redis), node_id="a")
    b = NodeEvents(RedisPubSub(redis), node_id="b")
    a.start()
    b.start()
    try:
        await asyncio.wait_for(a.connected.wait(), 5)
        await asyncio.wait_for(b.connected.wait(), 5)
        on_b = b.subscribe()
        a.publish(KnockEvent(room_id="r-1", waiting=1))
        a.publish(RoomStateEvent(room_id="r-1", state=RoomState.LIVE))
        first = await on_b.next(5)
        second = await on_b.next(5)
        assert isinstance(first, KnockEvent) and first.node_id == "a" and first.waiting == 1
        assert isinstance(second, RoomStateEvent) and second.state is RoomState.LIVE
        on_b.close()
        assert await on_b.next(0.1) is None and on_b.closed
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_slow_subscriber_loses_the_oldest_not_the_newest(redis: aioredis.Redis) -> None:
    events = NodeEvents(RedisPubSub(redis), node_id="a")
    events.start()
    try:
        await asyncio.wait_for(events.connected.wait(), 5)
        slow = events.subscribe(maxsize=2)
        for i in range(5):
            events.publish(KnockEvent(room_id=f"r-{i}", waiting=i))
        await asyncio.sleep(0.5)
        got = [await slow.next(1), await slow.next(1)]
        assert [e.room_id for e in got if isinstance(e, KnockEvent)] == ["r-3", "r-4"]
        assert slow.dropped == 3
    finally:
        await events.aclose()


@pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server")
@pytest.mark.timeout(60)
async def test_the_listener_comes_back_with_redis(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = aioredis.Redis.from_url(server.url)
    events = NodeEvents(RedisPubSub(client), node_id="a")
    events.start()
    try:
        await asyncio.wait_for(events.connected.wait(), 5)
        heard = events.subscribe()
        await asyncio.to_thread(server.stop)
        events.publish(QueueEvent())  # lost or late, never raised
        await asyncio.sleep(2.0)
        assert not events.connected.is_set()
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(events.connected.wait(), 15)
        events.publish(KnockEvent(room_id="r-9", waiting=1))
        while True:
            event = await heard.next(10)
            assert event is not None, "nothing heard after Redis came back"
            if isinstance(event, KnockEvent):
                break
        assert event.room_id == "r-9"
    finally:
        await events.aclose()
        await client.aclose()
        server.kill()


class _Unreachable:
    """A backend whose Redis is away: publishing fails, listening never gets going."""

    async def publish(self, data: bytes) -> None:
        raise ConnectionError("Redis is away")

    async def listen(self, on_ready: Callable[[], None]) -> AsyncIterator[bytes]:
        raise ConnectionError("Redis is away")
        yield b""  # pragma: no cover (makes this an async generator)


async def test_this_nodes_own_events_reach_its_subscribers_without_redis() -> None:
    """A dashboard on the room's own node hears of a room ending although the listener
    is between reconnections (the outage test met this as a lost room_state)."""
    events = NodeEvents(_Unreachable(), node_id="a")
    events.start()
    try:
        heard = events.subscribe()
        events.publish(RoomStateEvent(room_id="r-1", state=RoomState.ENDED))
        event = await heard.next(2)
        assert isinstance(event, RoomStateEvent) and event.node_id == "a"
        assert await heard.next(0.3) is None, "delivered twice"
    finally:
        await events.aclose()


async def test_an_event_is_heard_once_on_its_own_node(redis: aioredis.Redis) -> None:
    events = NodeEvents(RedisPubSub(redis), node_id="a")
    events.start()
    try:
        await asyncio.wait_for(events.connected.wait(), 5)
        heard = events.subscribe()
        events.publish(KnockEvent(room_id="r-1", waiting=1))
        assert isinstance(await heard.next(2), KnockEvent)
        assert await heard.next(0.5) is None, "the echo from Redis was delivered again"
    finally:
        await events.aclose()
