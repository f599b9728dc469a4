"""REST for residents' bookings: topics, center hours, free slots, book/cancel/move, iCalendar.

A booking is reached with its manage key (``?key=`` or ``X-Booking-Key``) by the
resident, or with a staff sign-in by the people who work in it (and admins).
"""

from __future__ import annotations

from aiohttp import web

from kernel.roles import Role
from scheduler.availability import Availability
from scheduler.errors import BookingKeyError
from scheduler.models import Booking, BookingRequest, BookingView, RescheduleRequest
from scheduler.timezones import SEOUL
from scheduler.topics import Topic
from scheduler.wire import AvailabilityQuery, BookingStateRequest, CenterView, HolidayView
from web.appkeys import AVAILABILITY, BOOKINGS, TOPICS
from web.auth import require_staff
from web.endpoints import Access, Endpoint, Param
from web.http_json import json_body, query_params

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _is_staff(request: web.Request) -> bool:
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


async def _booking_for(request: web.Request) -> tuple[Booking, str | None, bool]:
    """The booking named in the path, for its resident (``?key=``) or for staff."""
    service = request.app[BOOKINGS]
    booking_id = request.match_info["booking_id"]
    key = request.query.get("key") or request.headers.get("X-Booking-Key")
    if key:
        return await service.authorize(booking_id, key), key, False
    if _is_staff(request):
        claims = require_staff(request)
        booking = await service.get(booking_id)
        if claims.role is not Role.ADMIN and claims.username not in (
            booking.counselor,
            booking.interpreter,
        ):
            require_staff(request, Role.COUNSELOR)
        return booking, None, True
    raise BookingKeyError(
        "this booking needs its key (?key=...) from the link you received when you booked"
    )


async def _view(
    request: web.Request, booking: Booking, key: str | None, staff: bool
) -> BookingView:
    service = request.app[BOOKINGS]
    links = await service.staff_links(booking) if staff else None
    return service.view(booking, key=key, staff_links=links)


async def list_topics(request: web.Request) -> list[Topic]:
    return await request.app[TOPICS].list()


async def center(request: web.Request) -> CenterView:
    service = request.app[BOOKINGS]
    hours = service.hours
    year = service.now().astimezone(SEOUL).year
    return CenterView(
        opens=f"{hours.opens:%H:%M}",
        closes=f"{hours.closes:%H:%M}",
        timezone="Asia/Seoul",
        working_days=[_WEEKDAYS[d] for d in sorted(hours.working_weekdays)],
        holidays=[
            HolidayView(date=d, name=n)
            for y in (year, year + 1)
            for d, n in sorted(hours.holidays_in(y).items())
        ],
    )


async def availability(request: web.Request) -> web.Response:
    """Free slots (an ``Availability``), through the node's cache (``web.availability_cache``)."""
    query = query_params(request, AvailabilityQuery)
    return await request.app[AVAILABILITY].response(
        topic_id=query.topic,
        language=query.language,
        timezone=query.timezone,
        needs_interpreter=query.needs_interpreter,
        first_day=query.from_,
        days=query.days,
    )


async def create_booking(request: web.Request) -> BookingView:
    body = await json_body(request, BookingRequest)
    service = request.app[BOOKINGS]
    created = await service.book(body)
    return service.view(created.booking, key=created.manage_key, include_key=True)


async def get_booking(request: web.Request) -> BookingView:
    booking, key, staff = await _booking_for(request)
    return await _view(request, booking, key, staff)


async def cancel_booking(request: web.Request) -> BookingView:
    booking, key, staff = await _booking_for(request)
    cancelled = await request.app[BOOKINGS].cancel(booking)
    return await _view(request, cancelled, key, staff)


async def reschedule_booking(request: web.Request) -> BookingView:
    booking, key, staff = await _booking_for(request)
    body = await json_body(request, RescheduleRequest)
    moved = await request.app[BOOKINGS].reschedule(booking, body.slot_start)
    return await _view(request, moved, key, staff)


async def booking_ics(request: web.Request) -> web.Response:
    booking, _, _ = await _booking_for(request)
    ics = await request.app[BOOKINGS].ics(booking)
    return web.Response(
        body=ics,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="seoulbridge-{booking.id}.ics"'},
    )


async def set_booking_state(request: web.Request) -> BookingView:
    booking, _, _ = await _booking_for(request)
    body = await json_body(request, BookingStateRequest)
    updated = await request.app[BOOKINGS].set_state(booking, body.state)
    return await _view(request, updated, None, True)


_KEY = Param("key", description="booking key returned when the booking was made")
_BID = Param("booking_id", "path", "booking id")

ENDPOINTS = (
    Endpoint("GET", "/api/topics", list_topics, "Consultation topics", "bookings",
             response=Topic, response_list=True),
    Endpoint("GET", "/api/center", center, "Opening hours and Korean public holidays",
             "bookings", response=CenterView),
    Endpoint("GET", "/api/availability", availability, "Free slots in the resident's time zone",
             "bookings", query=AvailabilityQuery, response=Availability, errors=(503,)),
    Endpoint("POST", "/api/bookings", create_booking,
             "Book a slot (assigns counselor and interpreter)", "bookings",
             request=BookingRequest, response=BookingView, status=201, errors=(409,)),
    Endpoint("GET", "/api/bookings/{booking_id}", get_booking,
             "A booking (resident key or staff)", "bookings", response=BookingView,
             params=(_BID, _KEY), access=Access.KEY),
    Endpoint("POST", "/api/bookings/{booking_id}/cancel", cancel_booking, "Cancel a booking",
             "bookings", response=BookingView, params=(_BID, _KEY), access=Access.KEY,
             errors=(409,)),
    Endpoint("DELETE", "/api/bookings/{booking_id}", cancel_booking,
             "Cancel a booking (same as POST .../cancel)", "bookings", response=BookingView,
             params=(_BID, _KEY), access=Access.KEY, errors=(409,)),
    Endpoint("POST", "/api/bookings/{booking_id}/reschedule", reschedule_booking,
             "Move to another slot", "bookings", request=RescheduleRequest,
             response=BookingView, params=(_BID, _KEY), access=Access.KEY, errors=(409,)),
    Endpoint("GET", "/api/bookings/{booking_id}/calendar.ics", booking_ics, "iCalendar file",
             "bookings", params=(_BID, _KEY), access=Access.KEY, content_type="text/calendar"),
    Endpoint("POST", "/api/bookings/{booking_id}/state", set_booking_state,
             "Start, complete, no-show (staff)", "staff", request=BookingStateRequest,
             response=BookingView, params=(_BID,), access=Access.STAFF,
             roles=(Role.COUNSELOR,), errors=(404, 409)),
)  # fmt: skip
