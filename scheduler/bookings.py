"""Booking service: availability, matching counselor + interpreter, join links, iCalendar.

Everything shared lives in Redis (``BookingStore``); this object holds no state of its
own besides its collaborators, so any number of server processes can run it side by side.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from pydantic import BaseModel, Field

from scheduler.booking_store import BookingStore, Interval
from scheduler.calendar import CenterHours, Slot
from scheduler.errors import BookingKeyError, InvalidSlotError, SlotTakenError
from scheduler.models import (
    Booking,
    BookingRequest,
    BookingState,
    BookingView,
    JoinLink,
    Language,
)
from scheduler.staff import StaffMember, StaffStore
from scheduler.timezones import SEOUL
from scheduler.topics import Topic, TopicStore
from signaling.protocol import Role, RoomState
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

log = logging.getLogger(__name__)

JOIN_OPENS_BEFORE = timedelta(minutes=15)
STAFF_GRACE_AFTER = timedelta(minutes=30)
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


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    booking: Booking
    manage_key: str


class BookingService:
    def __init__(
        self,
        *,
        store: BookingStore,
        staff: StaffStore,
        topics: TopicStore,
        rooms: RoomDirectory,
        tokens: TokenService,
        base_url: str,
        hours: CenterHours | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self._staff = staff
        self.topics = topics
        self._rooms = rooms
        self._tokens = tokens
        self._base_url = base_url.rstrip("/")
        self.hours = hours or CenterHours()
        self._clock = clock
        self._rng = rng or random.Random()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -------------------------------------------------------------- matching
    @staticmethod
    def counselors_for(staff: list[StaffMember], topic: str) -> list[StaffMember]:
        return [m for m in staff if m.role is Role.COUNSELOR and topic in m.topics]

    @staticmethod
    def interpreters_for(staff: list[StaffMember], language: str) -> list[StaffMember]:
        return [m for m in staff if m.role is Role.INTERPRETER and language in m.languages]

    def _on_duty(self, people: list[StaffMember], slot: Slot) -> list[str]:
        names = [m.username for m in people if m.works(slot.start, slot.end)]
        self._rng.shuffle(names)  # ties in load are broken at random
        return names

    # ---------------------------------------------------------- availability
    async def availability(
        self,
        *,
        topic_id: str,
        language: Language,
        timezone: str,
        needs_interpreter: bool | None = None,
        first_day: date | None = None,
        days: int = 14,
    ) -> Availability:
        """Free slots whose local (resident) date falls in [first_day, first_day + days)."""
        topic = await self.topics.require(topic_id)
        zone = ZoneInfo(timezone)
        need = language != "ko" if needs_interpreter is None else needs_interpreter
        now = self.now()
        first = first_day or now.astimezone(zone).date()
        days = max(1, min(days, MAX_DAYS))
        range_start = datetime.combine(first, datetime.min.time(), zone)
        range_end = datetime.combine(first + timedelta(days=days), datetime.min.time(), zone)
        staff = await self._staff.list()
        counselors = self.counselors_for(staff, topic.id)
        interpreters = self.interpreters_for(staff, language) if need else []
        busy = await self.store.busy(
            [m.username for m in counselors + interpreters], range_start, range_end
        )
        offers: list[SlotOffer] = []
        closed: dict[date, str] = {}
        seoul_day = range_start.astimezone(SEOUL).date()
        while datetime.combine(seoul_day, datetime.min.time(), SEOUL) < range_end:
            holiday = self.hours.holiday(seoul_day)
            if holiday:
                closed[seoul_day] = holiday
            for slot in self.hours.slots(seoul_day, topic):
                if slot.start <= now or not (range_start <= slot.start < range_end):
                    continue
                if not self._someone_free(counselors, busy, slot):
                    continue
                if need and not self._someone_free(interpreters, busy, slot):
                    continue
                offers.append(
                    SlotOffer(
                        start=slot.start,
                        end=slot.end,
                        local_start=slot.start.astimezone(zone),
                        local_end=slot.end.astimezone(zone),
                        seoul_start=slot.start.astimezone(SEOUL),
                    )
                )
            seoul_day += timedelta(days=1)
        return Availability(
            topic=topic.id,
            timezone=timezone,
            slot_minutes=topic.slot_minutes,
            needs_interpreter=need,
            slots=offers,
            closed_days=closed,
        )

    @staticmethod
    def _someone_free(
        people: list[StaffMember], busy: dict[str, list[Interval]], slot: Slot
    ) -> bool:
        s, e = int(slot.start.timestamp()), int(slot.end.timestamp())
        return any(
            m.works(slot.start, slot.end)
            and not any(i.start < e and i.end > s for i in busy.get(m.username, []))
            for m in people
        )

    # --------------------------------------------------------------- booking
    def _slot_for(self, start: datetime, timezone: str, topic: Topic) -> Slot:
        if start.tzinfo is None:
            start = start.replace(tzinfo=ZoneInfo(timezone))
        return self.hours.check_slot(start.astimezone(UTC), topic, now=self.now())

    async def _candidates(
        self, topic: Topic, language: str, need: bool, slot: Slot
    ) -> tuple[list[str], list[str]]:
        staff = await self._staff.list()
        counselors = self._on_duty(self.counselors_for(staff, topic.id), slot)
        if not counselors:
            raise SlotTakenError(
                "no counselor for this topic works at that time; choose another slot"
            )
        interpreters: list[str] = []
        if need:
            interpreters = self._on_duty(self.interpreters_for(staff, language), slot)
            if not interpreters:
                raise SlotTakenError(
                    f"no interpreter for language {language!r} works at that time; "
                    "choose another slot"
                )
        return counselors, interpreters

    async def book(self, request: BookingRequest) -> Created:
        topic = await self.topics.require(request.topic)
        slot = self._slot_for(request.slot_start, request.timezone, topic)
        need = request.interpreter_needed
        counselors, interpreters = await self._candidates(topic, request.language, need, slot)
        manage_key = secrets.token_urlsafe(18)
        draft = Booking(
            id="b-" + secrets.token_urlsafe(9),
            state=BookingState.CONFIRMED,
            resident=request,
            topic=topic.id,
            needs_interpreter=need,
            start=slot.start,
            end=slot.end,
            counselor="",
            created_at=self.now(),
        )
        booking = await self.store.reserve(
            draft,
            key_hash=hash_key(manage_key),
            counselors=counselors,
            interpreters=interpreters,
        )
        booking = await self._attach_room(booking, topic)
        log.info(
            "booking %s: %s at %s with %s%s",
            booking.id,
            topic.id,
            booking.start.isoformat(),
            booking.counselor,
            f" and {booking.interpreter}" if booking.interpreter else "",
        )
        return Created(booking, manage_key)

    async def _attach_room(self, booking: Booking, topic: Topic) -> Booking:
        """A fresh room for the booking's slot; on failure the booking is released again."""
        try:
            room = await self._rooms.create(
                title=f"{topic.name('ko')} · {booking.resident.name}",
                topic=topic.id,
                created_by=booking.counselor,
                starts_at=booking.start.timestamp(),
                ends_at=booking.end.timestamp(),
                booking_id=booking.id,
            )
            await self.store.set_room(booking.id, room.id)
        except BaseException:
            await self.store.transition(booking, BookingState.CANCELLED)
            raise
        return booking.model_copy(update={"room_id": room.id})

    async def authorize(self, booking_id: str, key: str | None) -> Booking:
        """The booking if ``key`` is its manage key (residents); BookingKeyError otherwise."""
        booking, key_hash = await self.store.require(booking_id)
        if not key or not hmac.compare_digest(hash_key(key), key_hash):
            raise BookingKeyError(
                "this booking needs its key: open the link you received when you booked"
            )
        return booking

    async def get(self, booking_id: str) -> Booking:
        return (await self.store.require(booking_id))[0]

    async def cancel(self, booking: Booking) -> Booking:
        cancelled = await self.store.transition(booking, BookingState.CANCELLED)
        await self._end_room(booking)
        log.info("booking %s: cancelled", booking.id)
        return cancelled

    async def set_state(self, booking: Booking, state: BookingState) -> Booking:
        if state is BookingState.CANCELLED:
            return await self.cancel(booking)
        return await self.store.transition(booking, state)

    async def reschedule(self, booking: Booking, slot_start: datetime) -> Booking:
        """Move to a new slot (same people when free), with a new room and new links."""
        topic = await self.topics.require(booking.topic)
        slot = self._slot_for(slot_start, booking.resident.timezone, topic)
        if slot.start == booking.start:
            raise InvalidSlotError("the booking is already at that time; choose a different slot")
        counselors, interpreters = await self._candidates(
            topic, booking.resident.language, booking.needs_interpreter, slot
        )
        moved = await self.store.move(
            booking, slot.start, slot.end, counselors=counselors, interpreters=interpreters
        )
        await self._end_room(booking)
        moved = await self._attach_room(moved, topic)
        log.info("booking %s: moved to %s", booking.id, moved.start.isoformat())
        return moved

    async def _end_room(self, booking: Booking) -> None:
        if booking.room_id is None:
            return
        try:
            await self._rooms.transition(booking.room_id, RoomState.ENDED)
        except Exception as exc:  # the room may already be over; the booking is what counts
            log.info("booking %s: room %s not ended: %s", booking.id, booking.room_id, exc)

    async def today(self, username: str | None = None) -> list[Booking]:
        """Bookings of today's Seoul date, optionally only those ``username`` works in."""
        bookings = await self.store.on_day(self.now().astimezone(SEOUL).date())
        if username is None:
            return bookings
        return [b for b in bookings if username in (b.counselor, b.interpreter)]

    # ----------------------------------------------------------------- links
    def join_url(self, room_id: str, token: str) -> str:
        return f"{self._base_url}/join/{room_id}?t={token}"

    def resident_link(self, booking: Booking) -> JoinLink | None:
        if booking.room_id is None:
            return None
        opens = booking.start - JOIN_OPENS_BEFORE
        token = self._tokens.issue_join(
            room_id=booking.room_id,
            role=Role.RESIDENT,
            name=booking.resident.name,
            language=booking.resident.language,
            ttl_s=(booking.end - booking.start).total_seconds(),
            not_before=opens.timestamp(),
            expires_at=booking.end.timestamp(),
        )
        return JoinLink(
            role="resident",
            name=booking.resident.name,
            url=self.join_url(booking.room_id, token),
            valid_from=opens,
            valid_until=booking.end,
        )

    def staff_link(self, booking: Booking, member: StaffMember) -> JoinLink | None:
        if booking.room_id is None:
            return None
        role = Role.INTERPRETER if member.role is Role.INTERPRETER else Role.COUNSELOR
        language: str = booking.resident.language if role is Role.INTERPRETER else "ko"
        if language not in member.languages and member.languages:
            language = member.languages[0]
        opens = booking.start - JOIN_OPENS_BEFORE
        until = booking.end + STAFF_GRACE_AFTER
        token = self._tokens.issue_join(
            room_id=booking.room_id,
            role=role,
            name=member.display_name,
            language=language,
            ttl_s=(until - opens).total_seconds(),
            not_before=opens.timestamp(),
            expires_at=until.timestamp(),
        )
        return JoinLink(
            role="interpreter" if role is Role.INTERPRETER else "counselor",
            name=member.display_name,
            url=self.join_url(booking.room_id, token),
            valid_from=opens,
            valid_until=until,
        )

    async def staff_links(self, booking: Booking) -> list[JoinLink]:
        links = []
        for username in (booking.counselor, booking.interpreter):
            member = await self._staff.get(username) if username else None
            link = self.staff_link(booking, member) if member else None
            if link is not None:
                links.append(link)
        return links

    def ics_url(self, booking: Booking, key: str | None) -> str:
        url = f"{self._base_url}/api/bookings/{booking.id}/calendar.ics"
        return f"{url}?key={key}" if key else url

    def view(
        self,
        booking: Booking,
        *,
        key: str | None = None,
        include_key: bool = False,
        staff_links: list[JoinLink] | None = None,
    ) -> BookingView:
        zone = ZoneInfo(booking.resident.timezone)
        link = self.resident_link(booking) if booking.state is BookingState.CONFIRMED else None
        return BookingView(
            id=booking.id,
            state=booking.state,
            topic=booking.topic,
            start=booking.start,
            end=booking.end,
            timezone=booking.resident.timezone,
            local_start=booking.start.astimezone(zone),
            local_end=booking.end.astimezone(zone),
            seoul_start=booking.start.astimezone(SEOUL),
            counselor=booking.counselor,
            interpreter=booking.interpreter,
            resident_name=booking.resident.name,
            language=booking.resident.language,
            join_url=link.url if link else None,
            ics_url=self.ics_url(booking, key),
            manage_key=key if include_key else None,
            staff_links=staff_links,
        )

    async def ics(self, booking: Booking) -> bytes:
        topic = await self.topics.get(booking.topic)
        title = topic.name(booking.resident.language) if topic else booking.topic
        link = self.resident_link(booking)
        description = "Seoulbridge video consultation."
        if link is not None:
            description += f"\nJoin (opens 15 minutes before): {link.url}"
        calendar = Calendar.new(prodid="-//Seoulbridge//Scheduler//EN")
        calendar.add("method", "PUBLISH")
        event = Event.new(
            uid=f"{booking.id}@seoulbridge",
            stamp=self.now(),
            start=booking.start,
            end=booking.end,
            summary=f"Seoulbridge: {title}",
            description=description,
            url=link.url if link else None,
            location=link.url if link else None,
            sequence=int(booking.start.timestamp()) % 100000,
        )
        if booking.state is BookingState.CANCELLED:
            event.add("status", "CANCELLED")
        calendar.add_component(event)
        ical: bytes = calendar.to_ical()
        return ical


__all__ = ["Availability", "BookingService", "Created", "SlotOffer"]
