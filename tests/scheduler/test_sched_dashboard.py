"""The staff dashboard reads Redis a fixed number of times, however many rows it shows."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock, add_staff

from kernel.roles import Role
from scheduler.booking_store import BookingStore
from scheduler.bookings import BookingService
from scheduler.dashboard import DashboardReader
from scheduler.models import BookingRequest
from scheduler.queue import WalkInQueue
from scheduler.queue_models import Presence, QueueJoinRequest, TicketState
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.protocol import RoomState
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

pytestmark = pytest.mark.timeout(30)
SEOUL = ZoneInfo("Asia/Seoul")


class CountingRedis(aioredis.Redis):
    """A real Redis client that counts round trips: commands, and pipelines as one each."""

    trips = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.trips += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        self.trips += 1
        return super().pipeline(transaction, shard_hint)


async def test_dashboard_round_trips_do_not_grow_with_rows(
    redis_url: str, redis: aioredis.Redis, clock: FakeClock
) -> None:
    client = CountingRedis.from_url(redis_url)
    assert isinstance(client, CountingRedis)
    try:
        topics = TopicStore(client)
        await topics.ensure_defaults()
        staff = StaffStore(client)
        await add_staff(staff, "park", Role.COUNSELOR, topics=["nationality"])
        await add_staff(staff, "lee", Role.COUNSELOR, topics=["nationality"])
        rooms = RoomDirectory(client, clock=clock)
        tokens = TokenService(SECRET, clock=clock)
        bookings = BookingService(
            store=BookingStore(client), staff=staff, topics=topics, rooms=rooms, tokens=tokens,
            base_url="http://sb.test", clock=clock, rng=random.Random(3),
        )  # fmt: skip
        queue = WalkInQueue(
            client, staff=staff, topics=topics, rooms=rooms, tokens=tokens,
            base_url="http://sb.test", clock=clock,
        )  # fmt: skip
        reader = DashboardReader(bookings=bookings, queue=queue, staff=staff, rooms=rooms)

        async def book(hour: int, minute: int) -> None:
            request = BookingRequest.model_validate(
                {
                    "name": f"Resident {hour}:{minute}", "contact": "r@example.jp",
                    "country": "JP", "timezone": "Asia/Tokyo", "language": "ko",
                    "topic": "nationality",
                    "slot_start": datetime(2026, 11, 23, hour, minute, tzinfo=SEOUL).isoformat(),
                }
            )  # fmt: skip
            created = await bookings.book(request)
            assert created.booking.room_id is not None
            await rooms.transition(created.booking.room_id, RoomState.LOBBY)

        async def walk_in(name: str) -> None:
            await queue.join(QueueJoinRequest(name=name, language="ko", topic="nationality"))
            await queue.set_presence("park", Presence.AVAILABLE)
            assert await queue.dispatch_once()

        async def trips_for_one_view() -> tuple[int, int, int]:
            before = client.trips
            board = await reader.for_staff("admin", Role.ADMIN)
            assert all(row.knocking for row in board.bookings)
            return client.trips - before, len(board.bookings), len(board.walk_ins)

        await book(10, 0)
        await walk_in("A")
        few, rows, walk_ins = await trips_for_one_view()
        assert (rows, walk_ins) == (1, 1)
        for minute in (0, 30):
            await book(11, minute)
            await book(12, minute)
        await queue.transition((await queue.matched())[0], TicketState.DONE)
        await walk_in("B")
        await queue.set_presence("lee", Presence.AVAILABLE)
        await queue.join(QueueJoinRequest(name="C", language="ko", topic="nationality"))
        assert await queue.dispatch_once()
        many, rows, walk_ins = await trips_for_one_view()
        assert (rows, walk_ins) == (5, 2)
        assert many == few, f"{few} Redis round trips for 2 rows, {many} for 7"
    finally:
        await client.aclose()
