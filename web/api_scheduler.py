"""REST for the scheduler: topics, availability, bookings, walk-in queue, dashboard, admin.

Wire-up in the composition root (``web.app``)::

    from web import api_scheduler
    app.cleanup_ctx.append(api_scheduler.scheduler_ctx)   # after the ctx that fills REDIS...
    api_scheduler.add_routes(app)

``scheduler_ctx`` reads REDIS, STAFF, ROOMS, TOKENS and SETTINGS and puts the booking
service, the topic store and the walk-in queue on the app (keys below); the queue's
dispatcher task runs until the app closes.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from scheduler import errors as E
from scheduler.availability import Availability
from scheduler.booking_store import BookingStore
from scheduler.bookings import BookingService
from scheduler.dashboard import DashboardReader
from scheduler.models import (
    Booking,
    BookingRequest,
    BookingView,
    RescheduleRequest,
)
from scheduler.openapi import Endpoint, Param, build_document
from scheduler.queue import WalkInQueue
from scheduler.queue_models import (
    Presence,
    QueueJoinRequest,
    Ticket,
    TicketState,
    TicketView,
)
from scheduler.staff import StaffMember
from scheduler.timezones import SEOUL
from scheduler.topics import Topic, TopicStore
from scheduler.wire import (
    AvailabilityQuery,
    BookingStateRequest,
    CenterView,
    Dashboard,
    HolidayView,
    PresenceRequest,
    PresenceView,
    StaffCreate,
    StaffUpdate,
    TicketStateRequest,
)
from signaling.protocol import Role
from web.appkeys import BOOKINGS, QUEUE, REDIS, ROOMS, SETTINGS, STAFF, TOKENS, TOPICS
from web.auth import require_staff
from web.http_errors import raise_error, validation_message
from web.http_json import json_body

STATIC_DIR = Path(__file__).parent / "static"
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: dict[type[E.SchedulerError], int] = {
    E.UnknownTopicError: 422,
    E.InvalidSlotError: 422,
    E.WeakPasswordError: 422,
    E.SlotTakenError: 409,
    E.UnknownBookingError: 404,
    E.UnknownTicketError: 404,
    E.UnknownStaffError: 404,
    E.BookingKeyError: 403,
    E.IllegalTransition: 409,
    E.StaffExistsError: 409,
}


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the scheduler's services; run the walk-in dispatcher until shutdown."""
    redis = app[REDIS]
    settings = app[SETTINGS]
    topics = TopicStore(redis)
    await topics.ensure_defaults()
    app[TOPICS] = topics
    app[BOOKINGS] = BookingService(
        store=BookingStore(redis),
        staff=app[STAFF],
        topics=topics,
        rooms=app[ROOMS],
        tokens=app[TOKENS],
        base_url=settings.base_url,
    )
    queue = WalkInQueue(
        redis,
        staff=app[STAFF],
        topics=topics,
        rooms=app[ROOMS],
        tokens=app[TOKENS],
        base_url=settings.base_url,
        join_ttl_s=settings.join_token_ttl_s,
    )
    app[QUEUE] = queue
    queue.start()
    try:
        yield
    finally:
        await queue.aclose()


# ------------------------------------------------------------------ plumbing
def _errors(handler: Handler) -> Handler:
    """Scheduler and validation errors become 4xx JSON saying what to fix."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValidationError as exc:
            raise_error(422, "invalid_request", validation_message(exc))
        except E.SchedulerError as exc:
            status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
            raise_error(status, exc.code, str(exc))
        except ValueError as exc:  # model checks outside pydantic
            raise_error(422, "invalid_request", str(exc))

    return wrapped


def _json(model: BaseModel | list[Any], status: int = 200) -> web.Response:
    if isinstance(model, list):
        text = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        text = model.model_dump_json()
    return web.Response(text=text, status=status, content_type="application/json")


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
    raise E.BookingKeyError(
        "this booking needs its key (?key=...) from the link you received when you booked"
    )


async def _view(
    request: web.Request, booking: Booking, key: str | None, staff: bool
) -> BookingView:
    service = request.app[BOOKINGS]
    links = await service.staff_links(booking) if staff else None
    return service.view(booking, key=key, staff_links=links)


# ------------------------------------------------------------------- public
async def list_topics(request: web.Request) -> web.Response:
    return _json(await request.app[TOPICS].list())


async def availability(request: web.Request) -> web.Response:
    query = AvailabilityQuery.model_validate(dict(request.query))
    result: Availability = await request.app[BOOKINGS].availability(
        topic_id=query.topic,
        language=query.language,
        timezone=query.timezone,
        needs_interpreter=query.needs_interpreter,
        first_day=query.from_,
        days=query.days,
    )
    return _json(result)


async def create_booking(request: web.Request) -> web.Response:
    body = await json_body(request, BookingRequest)
    service = request.app[BOOKINGS]
    created = await service.book(body)
    view = service.view(created.booking, key=created.manage_key, include_key=True)
    return _json(view, status=201)


async def get_booking(request: web.Request) -> web.Response:
    booking, key, staff = await _booking_for(request)
    return _json(await _view(request, booking, key, staff))


async def cancel_booking(request: web.Request) -> web.Response:
    booking, key, staff = await _booking_for(request)
    cancelled = await request.app[BOOKINGS].cancel(booking)
    return _json(await _view(request, cancelled, key, staff))


async def reschedule_booking(request: web.Request) -> web.Response:
    booking, key, staff = await _booking_for(request)
    body = await json_body(request, RescheduleRequest)
    moved = await request.app[BOOKINGS].reschedule(booking, body.slot_start)
    return _json(await _view(request, moved, key, staff))


async def booking_ics(request: web.Request) -> web.Response:
    booking, _, _ = await _booking_for(request)
    ics = await request.app[BOOKINGS].ics(booking)
    return web.Response(
        body=ics,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="seoulbridge-{booking.id}.ics"'},
    )


async def join_queue(request: web.Request) -> web.Response:
    body = await json_body(request, QueueJoinRequest)
    queue = request.app[QUEUE]
    ticket, key = await queue.join(body)
    return _json(await queue.view(ticket, key=key), status=201)


async def _ticket_for(request: web.Request) -> Ticket:
    key = request.query.get("key") or request.headers.get("X-Ticket-Key")
    return await request.app[QUEUE].authorize(request.match_info["ticket_id"], key)


async def poll_ticket(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    ticket = await queue.heartbeat(await _ticket_for(request))
    return _json(await queue.view(ticket))


async def leave_queue(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    ticket = await queue.transition(await _ticket_for(request), TicketState.LEFT)
    return _json(await queue.view(ticket))


# -------------------------------------------------------------------- staff


async def dashboard(request: web.Request) -> web.Response:
    claims = require_staff(request)
    app = request.app
    reader = DashboardReader(
        bookings=app[BOOKINGS], queue=app[QUEUE], staff=app[STAFF], rooms=app[ROOMS]
    )
    return _json(await reader.for_staff(claims.username, claims.role))


async def set_presence(request: web.Request) -> web.Response:
    claims = require_staff(request, Role.COUNSELOR, Role.INTERPRETER)
    body = await json_body(request, PresenceRequest)
    status = await request.app[QUEUE].set_presence(claims.username, Presence(body.status))
    return _json(PresenceView(username=claims.username, status=status))


async def set_booking_state(request: web.Request) -> web.Response:
    require_staff(request, Role.COUNSELOR)
    booking, _, _ = await _booking_for(request)
    body = await json_body(request, BookingStateRequest)
    updated = await request.app[BOOKINGS].set_state(booking, body.state)
    return _json(await _view(request, updated, None, True))


async def set_ticket_state(request: web.Request) -> web.Response:
    require_staff(request, Role.COUNSELOR)
    body = await json_body(request, TicketStateRequest)
    queue = request.app[QUEUE]
    ticket = await queue.get(request.match_info["ticket_id"])
    ticket = await queue.transition(ticket, TicketState(body.state))
    return _json(await queue.view(ticket))


# -------------------------------------------------------------------- admin


async def _check_topics(request: web.Request, topics: list[str]) -> None:
    known = {t.id for t in await request.app[TOPICS].list()}
    unknown = [t for t in topics if t not in known]
    if unknown:
        raise E.UnknownTopicError(
            f"unknown topic(s) {', '.join(unknown)}; known topics: {', '.join(sorted(known))}"
        )


async def list_staff(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    return _json(await request.app[STAFF].list())


async def create_staff(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    body = await json_body(request, StaffCreate)
    await _check_topics(request, body.topics)
    member = StaffMember.model_validate(body.model_dump(exclude={"password"}))
    return _json(await request.app[STAFF].add(member, body.password), status=201)


async def update_staff(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    body = await json_body(request, StaffUpdate)
    if body.username != request.match_info["username"]:
        raise_error(422, "invalid_request", "username in the body must match the URL")
    await _check_topics(request, body.topics)
    member = StaffMember.model_validate(body.model_dump())
    return _json(await request.app[STAFF].update(member))


async def delete_staff(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    await request.app[STAFF].remove(request.match_info["username"])
    return web.Response(status=204)


async def put_topic(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    body = await json_body(request, Topic)
    if body.id != request.match_info["topic_id"]:
        raise_error(422, "invalid_request", "topic id in the body must match the URL")
    return _json(await request.app[TOPICS].put(body))


async def delete_topic(request: web.Request) -> web.Response:
    require_staff(request, Role.ADMIN)
    await request.app[TOPICS].remove(request.match_info["topic_id"])
    return web.Response(status=204)


async def center(request: web.Request) -> web.Response:
    service = request.app[BOOKINGS]
    hours = service.hours
    year = service.now().astimezone(SEOUL).year
    days = [
        HolidayView(date=d, name=n)
        for y in (year, year + 1)
        for d, n in sorted(hours.holidays_in(y).items())
    ]
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return _json(
        CenterView(
            opens=f"{hours.opens:%H:%M}",
            closes=f"{hours.closes:%H:%M}",
            timezone="Asia/Seoul",
            working_days=[names[d] for d in sorted(hours.working_weekdays)],
            holidays=days,
        )
    )


# -------------------------------------------------------------------- pages
def _page(name: str) -> Handler:
    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / name)

    return page


# ------------------------------------------------------------------ openapi
_KEY = Param("key", description="booking key returned when the booking was made")
_BID = Param("booking_id", "path", "booking id")
_TID = Param("ticket_id", "path", "queue ticket id")
_TKEY = Param("key", description="ticket key returned when joining the queue")


def _endpoints() -> list[Endpoint]:
    eps = [
        Endpoint("GET", "/api/topics", "Consultation topics", "bookings", response=Topic,
                 response_list=True),
        Endpoint("GET", "/api/center", "Opening hours and Korean public holidays", "bookings",
                 response=CenterView),
        Endpoint("GET", "/api/availability", "Free slots in the resident's time zone", "bookings",
                 response=Availability, params=(
                     Param("topic", required=True, description="topic id"),
                     Param("language", description="resident's language (ko en ja zh ru)"),
                     Param("timezone", description="IANA zone, default Asia/Seoul"),
                     Param("needs_interpreter", schema={"type": "boolean"}),
                     Param("from", description="first local date (YYYY-MM-DD)",
                           schema={"type": "string", "format": "date"}),
                     Param("days", schema={"type": "integer", "minimum": 1, "maximum": 62}),
                 )),
        Endpoint("POST", "/api/bookings", "Book a slot (assigns counselor and interpreter)",
                 "bookings", request=BookingRequest, response=BookingView, status=201,
                 errors=(400, 409)),
        Endpoint("GET", "/api/bookings/{booking_id}", "A booking (resident key or staff)",
                 "bookings", response=BookingView, params=(_BID, _KEY), auth="key"),
        Endpoint("POST", "/api/bookings/{booking_id}/cancel", "Cancel a booking", "bookings",
                 response=BookingView, params=(_BID, _KEY), auth="key", errors=(409,)),
        Endpoint("POST", "/api/bookings/{booking_id}/reschedule", "Move to another slot",
                 "bookings", request=RescheduleRequest, response=BookingView,
                 params=(_BID, _KEY), auth="key", errors=(409,)),
        Endpoint("GET", "/api/bookings/{booking_id}/calendar.ics", "iCalendar file", "bookings",
                 params=(_BID, _KEY), auth="key", content_type="text/calendar"),
        Endpoint("POST", "/api/bookings/{booking_id}/state", "Start, complete, no-show (staff)",
                 "staff", request=BookingStateRequest, response=BookingView, params=(_BID,),
                 auth="staff", errors=(409,)),
        Endpoint("POST", "/api/queue", "Join the walk-in queue", "queue",
                 request=QueueJoinRequest, response=TicketView, status=201),
        Endpoint("GET", "/api/queue/{ticket_id}", "Position, wait, join link (poll = heartbeat)",
                 "queue", response=TicketView, params=(_TID, _TKEY), auth="key"),
        Endpoint("DELETE", "/api/queue/{ticket_id}", "Leave the queue", "queue",
                 response=TicketView, params=(_TID, _TKEY), auth="key", errors=(409,)),
        Endpoint("POST", "/api/queue/{ticket_id}/state", "Finish a walk-in session (staff)",
                 "staff", request=TicketStateRequest, response=TicketView, params=(_TID,),
                 auth="staff", errors=(404, 409)),
        Endpoint("GET", "/api/dashboard", "Today's bookings, queue, lobby knocks", "staff",
                 response=Dashboard, auth="staff"),
        Endpoint("POST", "/api/presence", "Set yourself available or away", "staff",
                 request=PresenceRequest, response=PresenceView, auth="staff", errors=(409,)),
        Endpoint("GET", "/api/staff", "List staff", "admin", response=StaffMember,
                 response_list=True, auth="admin"),
        Endpoint("POST", "/api/staff", "Add a staff member", "admin", request=StaffCreate,
                 response=StaffMember, status=201, auth="admin", errors=(409,)),
        Endpoint("PUT", "/api/staff/{username}", "Update profile, hours, leave", "admin",
                 request=StaffUpdate, response=StaffMember, auth="admin",
                 params=(Param("username", "path"),), errors=(404,)),
        Endpoint("DELETE", "/api/staff/{username}", "Remove a staff member", "admin",
                 auth="admin", params=(Param("username", "path"),), status=204, errors=(404,)),
        Endpoint("PUT", "/api/topics/{topic_id}", "Create or edit a topic", "admin",
                 request=Topic, response=Topic, auth="admin", params=(Param("topic_id", "path"),)),
        Endpoint("DELETE", "/api/topics/{topic_id}", "Remove a topic", "admin", auth="admin",
                 params=(Param("topic_id", "path"),), status=204, errors=(404,)),
    ]  # fmt: skip
    try:  # the lead's endpoints, documented from their own models when available
        from web.api_rooms import CreateRoomRequest, LoginRequest, RoomLinks
    except ImportError:  # pragma: no cover
        return eps
    eps += [
        Endpoint("POST", "/api/staff/login", "Staff sign-in: returns {token, staff}", "staff",
                 request=LoginRequest, errors=(401,)),
        Endpoint("POST", "/api/rooms", "Ad-hoc room with join links", "staff",
                 request=CreateRoomRequest, response=RoomLinks, status=201, auth="staff"),
        Endpoint("GET", "/api/join-info", "Check a join link", "rooms",
                 params=(Param("room"), Param("t", description="join token")),
                 errors=(401, 403, 404, 410)),
    ]  # fmt: skip
    return eps


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    return build_document("Seoulbridge API", "0.1.0", _endpoints())


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/openapi.json", openapi_json)
    r.add_get("/api/topics", _errors(list_topics))
    r.add_get("/api/center", _errors(center))
    r.add_get("/api/availability", _errors(availability))
    r.add_post("/api/bookings", _errors(create_booking))
    r.add_get("/api/bookings/{booking_id}", _errors(get_booking))
    r.add_post("/api/bookings/{booking_id}/cancel", _errors(cancel_booking))
    r.add_delete("/api/bookings/{booking_id}", _errors(cancel_booking))
    r.add_post("/api/bookings/{booking_id}/reschedule", _errors(reschedule_booking))
    r.add_get("/api/bookings/{booking_id}/calendar.ics", _errors(booking_ics))
    r.add_post("/api/bookings/{booking_id}/state", _errors(set_booking_state))
    r.add_post("/api/queue", _errors(join_queue))
    r.add_get("/api/queue/{ticket_id}", _errors(poll_ticket))
    r.add_delete("/api/queue/{ticket_id}", _errors(leave_queue))
    r.add_post("/api/queue/{ticket_id}/state", _errors(set_ticket_state))
    r.add_get("/api/dashboard", _errors(dashboard))
    r.add_post("/api/presence", _errors(set_presence))
    r.add_get("/api/staff", _errors(list_staff))
    r.add_post("/api/staff", _errors(create_staff))
    r.add_put("/api/staff/{username}", _errors(update_staff))
    r.add_delete("/api/staff/{username}", _errors(delete_staff))
    r.add_put("/api/topics/{topic_id}", _errors(put_topic))
    r.add_delete("/api/topics/{topic_id}", _errors(delete_topic))
    r.add_get("/book", _page("book.html"))
    r.add_get("/dashboard", _page("dashboard.html"))
    r.add_get("/admin", _page("admin.html"))
