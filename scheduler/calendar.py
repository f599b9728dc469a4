"""The center's calendar: opening hours in Seoul, Korean public holidays, the slot grid.

Slots of a topic start at opening time and follow each other back to back; the
last one ends no later than closing time. Instants are aware ``datetime`` objects;
residents see them converted into their own zone with zoneinfo, so DST changes in
their zone are handled by the zone database, not by arithmetic here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays

from scheduler.errors import InvalidSlotError
from scheduler.timezones import SEOUL
from scheduler.topics import Topic


@lru_cache(maxsize=16)
def _korean_holidays(year: int) -> dict[date, str]:
    return dict(holidays.country_holidays("KR", years=year, language="en_US"))


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, UTC
    end: datetime


@dataclass(frozen=True)
class CenterHours:
    """Opening hours (Seoul time) and which days are working days."""

    opens: time = time(9)
    closes: time = time(18)
    working_weekdays: frozenset[int] = frozenset(range(5))  # Monday..Friday

    def holiday(self, day: date) -> str | None:
        """The holiday's name if ``day`` is a Korean public holiday."""
        return _korean_holidays(day.year).get(day)

    def holidays_in(self, year: int) -> dict[date, str]:
        return dict(_korean_holidays(year))

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.working_weekdays and self.holiday(day) is None

    def slots(self, day: date, topic: Topic) -> list[Slot]:
        """The grid of slots of ``topic`` on Seoul date ``day`` (empty on closed days)."""
        if not self.is_open(day):
            return []
        length = timedelta(minutes=topic.slot_minutes)
        start = datetime.combine(day, self.opens, SEOUL)
        closing = datetime.combine(day, self.closes, SEOUL)
        grid = []
        while start + length <= closing:
            grid.append(Slot(start.astimezone(UTC), (start + length).astimezone(UTC)))
            start += length
        return grid

    def check_slot(self, start: datetime, topic: Topic, *, now: datetime) -> Slot:
        """The slot that starts at ``start``, or InvalidSlotError saying what is wrong."""
        if start.tzinfo is None:
            raise InvalidSlotError("the slot time needs a time zone")
        seoul = start.astimezone(SEOUL)
        if start <= now:
            raise InvalidSlotError(
                f"the slot {seoul:%Y-%m-%d %H:%M} (Seoul) is in the past; choose a later one"
            )
        day = seoul.date()
        holiday = self.holiday(day)
        if holiday is not None:
            raise InvalidSlotError(
                f"the center is closed on {day} ({holiday}, a Korean public holiday); "
                "choose another day"
            )
        if day.weekday() not in self.working_weekdays:
            raise InvalidSlotError(
                f"the center is closed on {day:%A} {day}; choose a working day (Monday to Friday)"
            )
        for slot in self.slots(day, topic):
            if slot.start == start:
                return slot
        raise InvalidSlotError(
            f"{seoul:%H:%M} Seoul time is not a slot start for this topic: slots are "
            f"{topic.slot_minutes} minutes long from {self.opens:%H:%M} to {self.closes:%H:%M} "
            "Seoul time; pick one of the free slots listed by GET /api/availability"
        )
