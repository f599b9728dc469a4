"""A booking's links stay usable for the whole slot, and each person is one identity.

Issue 15, items 1 and 2: once the counselor pressed "Open & start" the booking's
links vanished (``join_url: null`` in ``in_session``); a start pressed before the
window opened changed the state although nobody could enter; and each view of a
booking (or poll of a ticket) issued a new participant identity, so the same
resident on two devices was two lobby entries and two tiles.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock, add_staff

from kernel.roles import Role
from scheduler.bookings import BookingService
from scheduler.dashboard import DashboardReader
from scheduler.errors import TooEarlyError
from scheduler.models import BookingRequest, BookingState
from scheduler.queue import WalkInQueue
from scheduler.queue_models import Presence, QueueJoinRequest
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

pytestmark = pytest.mark.timeout(20)
SEOUL = ZoneInfo("Asia/Seoul")
SLOT = datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL)


def _request() -> BookingRequest:
    return BookingRequest.model_validate(
        {
            "name": "Kim Yui", "contact": "yui@example.jp", "country": "JP",
            "timezone": "Asia/Tokyo", "language": "ja", "topic": "nationality",
            "slot_start": SLOT.isoformat(),
        }
    )  # fmt: skip


@pytest.fixture
async def staff(redis: aioredis.Redis) -> StaffStore:
    store = StaffStore(redis)
    await add_staff(store, "park", Role.COUNSELOR, topics=["nationality"])
    await add_staff(store, "tanaka", Role.INTERPRETER, languages=["ko", "ja"])
    return store


@pytest.fixture
async def queue(redis: aioredis.Redis, clock: FakeClock, staff: StaffStore) -> WalkInQueue:
    topics = TopicStore(redis)
    await topics.ensure_defaults()
    return WalkInQueue(
        redis, staff=staff, topics=topics, rooms=RoomDirectory(redis, clock=clock),
        tokens=TokenService(SECRET, clock=clock), base_url="http://sb.test", clock=clock,
    )  # fmt: skip


def _sub(url: str | None, clock: FakeClock) -> str:
    assert url is not None
    return TokenService(SECRET, clock=clock).verify_join(url.split("?t=")[1]).participant_id


async def test_links_stay_usable_once_the_consultation_started(
    service: BookingService,
    staff: StaffStore,
    queue: WalkInQueue,
    redis: aioredis.Redis,
    clock: FakeClock,
) -> None:
    created = await service.book(_request())
    clock.set(datetime(2026, 11, 24, 9, 50, tzinfo=SEOUL))
    started = await service.set_state(created.booking, BookingState.IN_SESSION)
    view = service.view(started, key=created.manage_key)
    assert view.state is BookingState.IN_SESSION
    assert view.join_url is not None  # the resident's page still shows the link
    assert _sub(view.join_url, clock)  # and it verifies: usable right now
    assert {link.role for link in await service.staff_links(started)} == {
        "counselor",
        "interpreter",
    }
    # The counselor's dashboard row keeps their own link, so a closed tab can come back.
    reader = DashboardReader(
        bookings=service, queue=queue, staff=staff, rooms=RoomDirectory(redis, clock=clock)
    )
    row = (await reader.for_staff("park", Role.COUNSELOR)).bookings[0]
    assert row.state is BookingState.IN_SESSION
    assert row.join_url is not None and _sub(row.join_url, clock)
    assert row.opens_at == datetime(2026, 11, 24, 9, 45, tzinfo=SEOUL)


async def test_starting_before_the_links_open_is_refused_and_changes_nothing(
    service: BookingService, staff: StaffStore, clock: FakeClock
) -> None:
    created = await service.book(_request())
    clock.set(datetime(2026, 11, 24, 9, 44, tzinfo=SEOUL))  # one minute before they open
    with pytest.raises(TooEarlyError, match="09:45"):
        await service.set_state(created.booking, BookingState.IN_SESSION)
    assert (await service.get(created.booking.id)).state is BookingState.CONFIRMED
    clock.set(datetime(2026, 11, 24, 9, 45, tzinfo=SEOUL))
    started = await service.set_state(created.booking, BookingState.IN_SESSION)
    assert started.state is BookingState.IN_SESSION


async def test_one_booking_is_one_resident_and_one_seat_per_staff_member(
    service: BookingService, staff: StaffStore, clock: FakeClock
) -> None:
    created = await service.book(_request())
    clock.set(datetime(2026, 11, 24, 9, 50, tzinfo=SEOUL))
    phone = service.view(created.booking, key=created.manage_key)
    laptop = service.view(await service.get(created.booking.id), key=created.manage_key)
    assert _sub(phone.join_url, clock) == _sub(laptop.join_url, clock)
    first = {
        link.role: _sub(link.url, clock) for link in await service.staff_links(created.booking)
    }
    again = {
        link.role: _sub(link.url, clock) for link in await service.staff_links(created.booking)
    }
    assert first == again
    resident = _sub(phone.join_url, clock)
    people = {resident, *first.values()}
    assert len(people) == 3  # three different people
    # Another booking's resident is someone else.
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL))
    other = await service.book(
        _request().model_copy(update={"slot_start": datetime(2026, 11, 24, 11, 0, tzinfo=SEOUL)})
    )
    clock.set(datetime(2026, 11, 24, 10, 50, tzinfo=SEOUL))
    assert _sub(service.view(other.booking).join_url, clock) != resident


async def test_one_walk_in_ticket_is_one_resident(queue: WalkInQueue, clock: FakeClock) -> None:
    ticket, _ = await queue.join(
        QueueJoinRequest.model_validate({"name": "Kim", "topic": "nationality", "language": "ko"})
    )
    await queue.set_presence("park", Presence.AVAILABLE)
    assert [t.id for t in await queue.dispatch_once()] == [ticket.id]
    matched = await queue.get(ticket.id)
    polls = [(await queue.view(matched)).join_url for _ in range(3)]
    assert len({_sub(url, clock) for url in polls}) == 1
    member = await queue._staff.get("park")
    assert member is not None
    assert _sub(queue.staff_join_url(matched, member), clock) == _sub(
        queue.staff_join_url(matched, member), clock
    )
