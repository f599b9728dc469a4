"""A booking as an iCalendar file (RFC 5545), for the resident's own calendar."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

from scheduler.models import Booking, BookingState


def booking_calendar(
    booking: Booking, *, title: str, join_url: str | None, stamp: datetime
) -> bytes:
    """One VEVENT; a cancelled booking is sent with STATUS:CANCELLED."""
    description = "Seoulbridge video consultation."
    if join_url is not None:
        description += f"\nJoin (opens 15 minutes before): {join_url}"
    calendar = Calendar.new(prodid="-//Seoulbridge//Scheduler//EN")
    calendar.add("method", "PUBLISH")
    event = Event.new(
        uid=f"{booking.id}@seoulbridge",
        stamp=stamp,
        start=booking.start,
        end=booking.end,
        summary=f"Seoulbridge: {title}",
        description=description,
        url=join_url,
        location=join_url,
        sequence=int(booking.start.timestamp()) % 100000,
    )
    if booking.state is BookingState.CANCELLED:
        event.add("status", "CANCELLED")
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
