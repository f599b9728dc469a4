"""Free slots: the center's slot grid, minus what the people who could take it have booked.

Pure functions over data already read from Redis, so they are easy to test:
``BookingService.availability`` fetches staff and busy intervals, then calls
``free_slots_cooperatively`` (the same work, yielding to the event loop between days).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from scheduler.booking_store import Interval
from scheduler.calendar import CenterHours, Slot
from scheduler.staff import StaffMember
from scheduler.timezones import SEOUL
from scheduler.topics import Topic

#: The longest range one availability request may cover.
MAX_DAYS = 62


class SlotOffer(BaseModel):
    """One free slot, in UTC, the resident's zone and Seoul time."""

    start: datetime
    end: datetime
    local_start: datetime
    local_end: datetime
    seoul_start: datetime


class Availability(BaseModel):
    topic: str
    timezone: str
    slot_minutes: int
    needs_interpreter: bool
    slots: list[SlotOffer]
    closed_days: dict[date, str] = Field(
        default_factory=dict, description="Seoul dates in range that are public holidays"
    )


def local_range(
    first: date, days: int, zone: ZoneInfo, *, today: date | None = None, last: date | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of ``days`` local dates from ``first`` (clamped to 1..MAX_DAYS).

    With ``today`` and ``last`` (the booking horizon's last local date), the range is cut
    to [today, last]: nothing before can be booked, nothing after may be; a range wholly
    outside is empty (start == end). The dates never overflow (``9999-12-31`` is fine).
    """
    if today is not None and first < today:
        first = today
    days = max(1, min(days, MAX_DAYS))
    if last is not None:
        if first > last:
            start = datetime.combine(last, datetime.min.time(), zone)
            return start, start
        days = min(days, (last - first).days + 1)
    start = datetime.combine(first, datetime.min.time(), zone)
    try:
        end_day = first + timedelta(days=days)
    except OverflowError:
        end_day = date.max
    end = datetime.combine(end_day, datetime.min.time(), zone)
    return start, end


def someone_free(people: list[StaffMember], busy: dict[str, list[Interval]], slot: Slot) -> bool:
    """Whether one of ``people`` works during ``slot`` and has nothing booked then."""
    s, e = int(slot.start.timestamp()), int(slot.end.timestamp())
    return any(
        m.works(slot.start, slot.end)
        and not any(i.start < e and i.end > s for i in busy.get(m.username, []))
        for m in people
    )


@dataclass(frozen=True)
class SlotQuestion:
    """Everything ``free_slots`` looks at, read from Redis beforehand."""

    topic: Topic
    hours: CenterHours
    zone: ZoneInfo
    window: tuple[datetime, datetime]
    now: datetime
    need_interpreter: bool
    counselors: list[StaffMember]
    interpreters: list[StaffMember]
    busy: dict[str, list[Interval]]


def _days(q: SlotQuestion) -> Iterator[tuple[date, str | None, list[SlotOffer]]]:
    """Per Seoul day in the window: the day, its holiday (if any), its free slots."""
    range_start, range_end = q.window
    seoul_day = range_start.astimezone(SEOUL).date()
    while datetime.combine(seoul_day, datetime.min.time(), SEOUL) < range_end:
        offers: list[SlotOffer] = []
        for slot in q.hours.slots(seoul_day, q.topic):
            if slot.start <= q.now or not (range_start <= slot.start < range_end):
                continue
            if not someone_free(q.counselors, q.busy, slot):
                continue
            if q.need_interpreter and not someone_free(q.interpreters, q.busy, slot):
                continue
            offers.append(
                SlotOffer(
                    start=slot.start,
                    end=slot.end,
                    local_start=slot.start.astimezone(q.zone),
                    local_end=slot.end.astimezone(q.zone),
                    seoul_start=slot.start.astimezone(SEOUL),
                )
            )
        yield seoul_day, q.hours.holiday(seoul_day), offers
        if seoul_day == date.max:
            break
        seoul_day += timedelta(days=1)


def _availability(
    q: SlotQuestion, offers: list[SlotOffer], closed: dict[date, str]
) -> Availability:
    return Availability(
        topic=q.topic.id,
        timezone=q.zone.key,
        slot_minutes=q.topic.slot_minutes,
        needs_interpreter=q.need_interpreter,
        slots=offers,
        closed_days=closed,
    )


def free_slots(q: SlotQuestion) -> Availability:
    """The slots in the window after ``now`` that a counselor (and interpreter) can take."""
    offers: list[SlotOffer] = []
    closed: dict[date, str] = {}
    for day, holiday, day_offers in _days(q):
        if holiday:
            closed[day] = holiday
        offers.extend(day_offers)
    return _availability(q, offers, closed)


async def free_slots_cooperatively(q: SlotQuestion) -> Availability:
    """``free_slots`` on the event loop, one Seoul day at a time (well under a
    millisecond each), yielding between days: the loop that forwards RTP is never
    held for the whole computation (a thread would be worse: a CPU-bound thread
    starves the loop's many short system calls of the GIL)."""
    offers: list[SlotOffer] = []
    closed: dict[date, str] = {}
    for day, holiday, day_offers in _days(q):
        if holiday:
            closed[day] = holiday
        offers.extend(day_offers)
        await asyncio.sleep(0)
    return _availability(q, offers, closed)
