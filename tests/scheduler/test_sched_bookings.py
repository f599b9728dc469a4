"""Booking service against real Redis: matching, load balance, holidays, DST, cancel, move."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock, add_staff

from kernel.roles import Role
from scheduler.bookings import BookingService
from scheduler.errors import (
    BookingKeyError,
    IllegalTransition,
    InvalidSlotError,
    SlotTakenError,
    UnknownTopicError,
)
from scheduler.models import BookingRequest, BookingState
from scheduler.staff import StaffStore
from signaling.tokens import TokenError, TokenService

pytestmark = pytest.mark.timeout(20)
SEOUL = ZoneInfo("Asia/Seoul")


def request(slot: datetime, **over: object) -> BookingRequest:
    data: dict[str, object] = {
        "name": "Kim Minji",
        "contact": "minji@example.jp",
        "country": "JP",
        "timezone": "Asia/Tokyo",
        "language": "ko",
        "topic": "nationality",
        "slot_start": slot.isoformat(),
    }
    data.update(over)
    return BookingRequest.model_validate(data)


@pytest.fixture
async def staff(redis: aioredis.Redis) -> StaffStore:
    store = StaffStore(redis)
    await add_staff(store, "park", Role.COUNSELOR, topics=["nationality", "military_service"])
    await add_staff(store, "lee", Role.COUNSELOR, topics=["nationality"])
    await add_staff(store, "tanaka", Role.INTERPRETER, languages=["ko", "ja"])
    return store


async def test_books_least_loaded_counselor_and_interpreter(
    service: BookingService, staff: StaffStore
) -> None:
    first = await service.book(request(datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL)))
    second = await service.book(request(datetime(2026, 11, 24, 11, 0, tzinfo=SEOUL)))
    assert {first.booking.counselor, second.booking.counselor} == {"park", "lee"}
    assert first.booking.interpreter is None  # Korean speaker
    ja = await service.book(
        request(datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL), language="ja", name="Sato")
    )
    assert ja.booking.interpreter == "tanaka"
    assert ja.booking.counselor != first.booking.counselor  # first's counselor is busy at 10
    # Tanaka is the only ja interpreter: a second ja booking at 10:00 fails without writing.
    with pytest.raises(SlotTakenError):
        await service.book(
            request(datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL), language="ja", name="Ito")
        )
    assert len(await service.store.on_day(date(2026, 11, 24))) == 3


async def test_join_link_window(
    service: BookingService, staff: StaffStore, clock: FakeClock
) -> None:
    slot = datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL)
    created = await service.book(request(slot))
    view = service.view(created.booking, key=created.manage_key, include_key=True)
    assert view.join_url is not None
    token = view.join_url.split("?t=")[1]
    tokens = TokenService(SECRET, clock=clock)
    with pytest.raises(TokenError):  # not yet: opens 15 minutes before
        tokens.verify_join(token)
    clock.set(datetime(2026, 11, 24, 9, 46, tzinfo=SEOUL))
    claims = tokens.verify_join(token, room_id=created.booking.room_id)
    assert claims.name == "Kim Minji"
    clock.set(datetime(2026, 11, 24, 10, 30, tzinfo=SEOUL))
    with pytest.raises(TokenError):  # the slot is over
        tokens.verify_join(token)
    assert view.local_start.hour == 10 and view.local_start.utcoffset() is not None
    ics = await service.ics(created.booking)
    assert b"BEGIN:VEVENT" in ics and b"DTSTART" in ics and created.booking.id.encode() in ics


async def test_invalid_slots_are_refused(service: BookingService, staff: StaffStore) -> None:
    with pytest.raises(InvalidSlotError, match="past"):
        await service.book(request(datetime(2026, 11, 20, 10, 0, tzinfo=SEOUL)))
    with pytest.raises(InvalidSlotError, match="public holiday"):  # Christmas, a Friday
        await service.book(request(datetime(2026, 12, 25, 10, 0, tzinfo=SEOUL)))
    with pytest.raises(InvalidSlotError, match="closed on Saturday"):
        await service.book(request(datetime(2026, 11, 28, 10, 0, tzinfo=SEOUL)))
    with pytest.raises(InvalidSlotError, match="not a slot start"):
        await service.book(request(datetime(2026, 11, 24, 18, 0, tzinfo=SEOUL)))
    with pytest.raises(InvalidSlotError, match="not a slot start"):
        await service.book(request(datetime(2026, 11, 24, 10, 10, tzinfo=SEOUL)))
    with pytest.raises(UnknownTopicError):
        await service.book(request(datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL), topic="taxes"))
    assert await service.store.on_day(date(2026, 11, 24)) == []


async def test_holiday_substitute_day_is_closed(
    service: BookingService, staff: StaffStore, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 2, 25, tzinfo=UTC))
    # 2026-03-01 (Independence Movement Day) is a Sunday; Monday 03-02 is the substitute.
    avail = await service.availability(
        topic_id="nationality", language="ko", timezone="Asia/Seoul",
        first_day=date(2026, 3, 2), days=2,
    )  # fmt: skip
    assert date(2026, 3, 2) in avail.closed_days
    assert {s.seoul_start.date() for s in avail.slots} == {date(2026, 3, 3)}
    assert len(avail.slots) == 18  # 09:00-18:00 in 30-minute slots


async def test_slots_follow_resident_dst(
    service: BookingService, staff: StaffStore, clock: FakeClock
) -> None:
    clock.set(datetime(2027, 3, 1, tzinfo=UTC))
    # New York leaves EST for EDT on Sunday 2027-03-14.
    avail = await service.availability(
        topic_id="nationality", language="ko", timezone="America/New_York",
        first_day=date(2027, 3, 11), days=5,
    )  # fmt: skip
    firsts: dict[date, datetime] = {}
    for slot in avail.slots:
        firsts.setdefault(slot.seoul_start.date(), slot.local_start)
    # 09:00 Seoul is 19:00 EST (UTC-5) before the change and 20:00 EDT (UTC-4) after.
    assert firsts[date(2027, 3, 12)].isoformat() == "2027-03-11T19:00:00-05:00"
    assert firsts[date(2027, 3, 15)].isoformat() == "2027-03-14T20:00:00-04:00"
    # Booking with a naive local time is read in the resident's zone.
    created = await service.book(
        request(datetime(2027, 3, 14, 20, 30), timezone="America/New_York", country="US",
                contact="+1 212 555 0100")
    )  # fmt: skip
    assert created.booking.start.astimezone(SEOUL) == datetime(2027, 3, 15, 9, 30, tzinfo=SEOUL)


async def test_staff_hours_and_leave(service: BookingService, redis: aioredis.Redis) -> None:
    store = StaffStore(redis)
    await add_staff(
        store, "kang", Role.COUNSELOR, topics=["military_service"],
        weekly_hours={"tue": [{"start": "13:00", "end": "15:00"}]},
        leave=[{"start": "2026-12-01", "end": "2026-12-01", "note": "annual leave"}],
    )  # fmt: skip
    avail = await service.availability(
        topic_id="military_service", language="ko", timezone="Asia/Seoul",
        first_day=date(2026, 11, 23), days=16,
    )  # fmt: skip
    starts = [s.seoul_start for s in avail.slots]
    assert starts[0] == datetime(2026, 11, 24, 13, 0, tzinfo=SEOUL)
    assert len(starts) == 4 + 4  # two Tuesdays in range minus the one on leave → 24 Nov, 8 Dec
    assert all(s.date() != date(2026, 12, 1) for s in starts)
    with pytest.raises(SlotTakenError, match="no counselor"):
        await service.book(
            request(datetime(2026, 12, 1, 13, 0, tzinfo=SEOUL), topic="military_service")
        )


async def test_cancel_frees_slot_and_reschedule_moves(
    service: BookingService, staff: StaffStore
) -> None:
    slot = datetime(2026, 11, 24, 10, 0, tzinfo=SEOUL)
    created = await service.book(request(slot, topic="military_service"))  # only park does military
    with pytest.raises(SlotTakenError):
        await service.book(request(slot, topic="military_service", name="Other"))
    with pytest.raises(BookingKeyError):
        await service.authorize(created.booking.id, "wrong")
    booking = await service.authorize(created.booking.id, created.manage_key)
    moved = await service.reschedule(booking, datetime(2026, 11, 25, 14, 0, tzinfo=SEOUL))
    assert moved.counselor == "park" and moved.room_id != booking.room_id
    again = await service.book(request(slot, topic="military_service", name="Other"))  # freed
    cancelled = await service.cancel(moved)
    assert cancelled.state is BookingState.CANCELLED
    with pytest.raises(IllegalTransition):
        await service.cancel(cancelled)
    await service.book(
        request(datetime(2026, 11, 25, 14, 0, tzinfo=SEOUL), topic="military_service", name="Third")
    )
    assert again.booking.counselor == "park"


async def test_concurrent_bookings_never_double_book(
    service: BookingService, staff: StaffStore
) -> None:
    slots = [datetime(2026, 11, 24, 9 + i // 2, 30 * (i % 2), tzinfo=SEOUL) for i in range(6)]
    reqs = [
        request(slots[i % 6], name=f"R{i}", language="ja" if i % 4 == 0 else "ko")
        for i in range(60)
    ]
    results = await asyncio.gather(*(service.book(r) for r in reqs), return_exceptions=True)
    ok = [r.booking for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, SlotTakenError) for r in results if isinstance(r, BaseException))
    assert len(ok) == 12  # two nationality counselors x six slots
    seen: set[tuple[str, datetime]] = set()
    for b in ok:
        for person in filter(None, (b.counselor, b.interpreter)):
            assert (person, b.start) not in seen
            seen.add((person, b.start))
