"""A booking's links: the resident's and each staff member's join link, and its calendar file.

Join links open 15 minutes before the slot; the resident's closes at its end, staff keep
theirs 30 minutes longer. Tokens carry the window themselves (``nbf``/``exp``). A link is
usable for the whole slot, also once the consultation has started (``in_session``).

Each person has one participant identity per booking (``stable_participant_id``): the
resident's link opened on a phone and on a laptop is one lobby entry and one tile, the
second device replacing the first as a reconnect does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kernel.roles import Role
from scheduler.join_links import JoinLinks, stable_participant_id
from scheduler.models import Booking, BookingState, JoinLink
from scheduler.staff import StaffMember

JOIN_OPENS_BEFORE = timedelta(minutes=15)
STAFF_GRACE_AFTER = timedelta(minutes=30)
#: States in which a booking's join links are handed out.
LINK_STATES = frozenset({BookingState.CONFIRMED, BookingState.IN_SESSION})


def opens_at(booking: Booking) -> datetime:
    """When the booking's join links start to work."""
    return booking.start - JOIN_OPENS_BEFORE


def resident_participant_id(booking: Booking) -> str:
    return stable_participant_id("booking", booking.id, "resident")


def staff_participant_id(booking: Booking, username: str) -> str:
    return stable_participant_id("booking", booking.id, "staff", username)


class BookingLinks:
    def __init__(self, links: JoinLinks) -> None:
        self._links = links

    def resident(self, booking: Booking) -> JoinLink | None:
        if booking.room_id is None or booking.state not in LINK_STATES:
            return None
        opens = opens_at(booking)
        url = self._links.link(
            room_id=booking.room_id,
            role=Role.RESIDENT,
            name=booking.resident.name,
            language=booking.resident.language,
            ttl_s=(booking.end - booking.start).total_seconds(),
            participant_id=resident_participant_id(booking),
            not_before=opens.timestamp(),
            expires_at=booking.end.timestamp(),
        )
        return JoinLink(
            role="resident",
            name=booking.resident.name,
            url=url,
            valid_from=opens,
            valid_until=booking.end,
        )

    def staff(self, booking: Booking, member: StaffMember) -> JoinLink | None:
        if booking.room_id is None or booking.state not in LINK_STATES:
            return None
        opens = opens_at(booking)
        until = booking.end + STAFF_GRACE_AFTER
        seat, url = self._links.staff_link(
            member,
            room_id=booking.room_id,
            resident_language=booking.resident.language,
            ttl_s=(until - opens).total_seconds(),
            participant_id=staff_participant_id(booking, member.username),
            not_before=opens.timestamp(),
            expires_at=until.timestamp(),
        )
        return JoinLink(
            role="interpreter" if seat.role is Role.INTERPRETER else "counselor",
            name=member.display_name,
            url=url,
            valid_from=opens,
            valid_until=until,
        )

    def ics_url(self, booking: Booking, key: str | None) -> str:
        url = f"{self._links.base_url}/api/bookings/{booking.id}/calendar.ics"
        return f"{url}?key={key}" if key else url
