"""Booking service: book, cancel, reschedule, and what a booking looks like to its people.

Everything shared lives in Redis (``BookingStore``); this object holds no state of its
own besides its collaborators, so any number of server processes can run it side by side.
Free slots are computed in ``scheduler.availability``, links in ``scheduler.booking_links``.
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

from kernel.languages import Language
from scheduler.availability import (
    Availability,
    SlotQuestion,
    free_slots_cooperatively,
    local_range,
)
from scheduler.booking_links import BookingLinks, opens_at
from scheduler.booking_store import BookingStore
from scheduler.calendar import CenterHours, Slot
from scheduler.errors import BookingKeyError, InvalidSlotError, SlotTakenError, TooEarlyError
from scheduler.ics import booking_calendar
from scheduler.join_links import JoinLinks
from scheduler.models import Booking, BookingRequest, BookingState, BookingView, JoinLink
from scheduler.staff import StaffMember, StaffStore
from scheduler.timezones import SEOUL
from scheduler.topics import Topic, TopicStore
from signaling.protocol import RoomState
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

log = logging.getLogger(__name__)

#: How far ahead a slot may be booked (the booking page shows this much).
DEFAULT_HORIZON_DAYS = 62


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
        horizon_days: int = DEFAULT_HORIZON_DAYS,
    ) -> None:
        self.store = store
        self._staff = staff
        self.topics = topics
        self._rooms = rooms
        self.links = BookingLinks(JoinLinks(tokens, base_url))
        self.hours = hours or CenterHours()
        self._clock = clock
        self._rng = rng or random.Random()
        self.horizon = timedelta(days=horizon_days)
        #: Bookings made, moved or cancelled through this service: a cache of free slots
        #: keyed by it is stale when it changes (other nodes' changes: see its TTL).
        self.changes = 0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

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
        today = now.astimezone(zone).date()
        last = (now + self.horizon).astimezone(zone).date()
        window = local_range(first_day or today, days, zone, today=today, last=last)
        staff = await self._staff.list()
        counselors = [m for m in staff if m.counsels(topic.id)]
        interpreters = [m for m in staff if m.interprets(language)] if need else []
        busy = await self.store.busy([m.username for m in counselors + interpreters], *window)
        question = SlotQuestion(
            topic=topic, hours=self.hours, zone=zone, window=window, now=now,
            need_interpreter=need, counselors=counselors, interpreters=interpreters, busy=busy,
        )  # fmt: skip
        return await free_slots_cooperatively(question)

    # --------------------------------------------------------------- booking
    def _slot_for(self, start: datetime, timezone: str, topic: Topic) -> Slot:
        if start.tzinfo is None:
            start = start.replace(tzinfo=ZoneInfo(timezone))
        now = self.now()
        beyond = InvalidSlotError(
            f"bookings open {self.horizon.days} days ahead; choose a slot before "
            f"{(now + self.horizon).astimezone(SEOUL):%Y-%m-%d} (Seoul)"
        )
        try:
            slot = self.hours.check_slot(start.astimezone(UTC), topic, now=now)
        except OverflowError:  # the last day of year 9999 in a zone west of UTC
            raise beyond from None
        if slot.start > now + self.horizon:
            raise beyond
        return slot

    async def _candidates(
        self, topic: Topic, language: str, need: bool, slot: Slot
    ) -> tuple[list[str], list[str]]:
        staff = await self._staff.list()
        counselors = self._on_duty([m for m in staff if m.counsels(topic.id)], slot)
        if not counselors:
            raise SlotTakenError(
                "no counselor for this topic works at that time; choose another slot"
            )
        interpreters: list[str] = []
        if need:
            interpreters = self._on_duty([m for m in staff if m.interprets(language)], slot)
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
        self.changes += 1
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
        self.changes += 1
        await self._end_room(booking)
        log.info("booking %s: cancelled", booking.id)
        return cancelled

    async def set_state(self, booking: Booking, state: BookingState) -> Booking:
        """Staff move a booking on. Starting it before its links open is refused, so a
        booking is never ``in_session`` while nobody can enter its room."""
        if state is BookingState.CANCELLED:
            return await self.cancel(booking)
        if state is BookingState.IN_SESSION and self.now() < opens_at(booking):
            raise TooEarlyError(
                f"booking {booking.id} can be started from "
                f"{opens_at(booking).astimezone(SEOUL):%H:%M} Seoul time, when its links open"
            )
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
        self.changes += 1
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
    async def staff_links(self, booking: Booking) -> list[JoinLink]:
        links = []
        for username in (booking.counselor, booking.interpreter):
            member = await self._staff.get(username) if username else None
            link = self.links.staff(booking, member) if member else None
            if link is not None:
                links.append(link)
        return links

    def view(
        self,
        booking: Booking,
        *,
        key: str | None = None,
        include_key: bool = False,
        staff_links: list[JoinLink] | None = None,
    ) -> BookingView:
        zone = ZoneInfo(booking.resident.timezone)
        link = self.links.resident(booking)
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
            ics_url=self.links.ics_url(booking, key),
            manage_key=key if include_key else None,
            staff_links=staff_links,
        )

    async def ics(self, booking: Booking) -> bytes:
        topic = await self.topics.get(booking.topic)
        title = topic.name(booking.resident.language) if topic else booking.topic
        link = self.links.resident(booking)
        return booking_calendar(
            booking, title=title, join_url=link.url if link else None, stamp=self.now()
        )
