"""REST for the walk-in queue: join, poll (each poll is a heartbeat), leave; staff presence
and the end of a walk-in session."""

from __future__ import annotations

from aiohttp import web

from kernel.roles import Role
from scheduler.queue_models import Presence, QueueJoinRequest, Ticket, TicketState, TicketView
from scheduler.wire import PresenceRequest, PresenceView, TicketStateRequest
from signaling.node_events import QueueEvent
from web.appkeys import NODE_EVENTS, QUEUE
from web.auth import require_staff
from web.endpoints import Access, Endpoint, Param
from web.http_json import json_body


async def _ticket_for(request: web.Request) -> Ticket:
    key = request.query.get("key") or request.headers.get("X-Ticket-Key")
    return await request.app[QUEUE].authorize(request.match_info["ticket_id"], key)


def _queue_changed(request: web.Request) -> None:
    """Dashboards on every node refresh their queue at once."""
    events = request.app.get(NODE_EVENTS)
    if events is not None:
        events.publish(QueueEvent())


async def join_queue(request: web.Request) -> TicketView:
    body = await json_body(request, QueueJoinRequest)
    queue = request.app[QUEUE]
    ticket, key = await queue.join(body)
    _queue_changed(request)
    return await queue.view(ticket, key=key)


async def poll_ticket(request: web.Request) -> TicketView:
    queue = request.app[QUEUE]
    ticket = await queue.heartbeat(await _ticket_for(request))
    return await queue.view(ticket)


async def leave_queue(request: web.Request) -> TicketView:
    queue = request.app[QUEUE]
    ticket = await queue.transition(await _ticket_for(request), TicketState.LEFT)
    _queue_changed(request)
    return await queue.view(ticket)


async def without_interpreter(request: web.Request) -> TicketView:
    queue = request.app[QUEUE]
    ticket = await queue.drop_interpreter(await _ticket_for(request))
    return await queue.view(ticket)


async def set_ticket_state(request: web.Request) -> TicketView:
    body = await json_body(request, TicketStateRequest)
    queue = request.app[QUEUE]
    ticket = await queue.get(request.match_info["ticket_id"])
    ticket = await queue.transition(ticket, TicketState(body.state))
    _queue_changed(request)
    return await queue.view(ticket)


async def set_presence(request: web.Request) -> PresenceView:
    claims = require_staff(request)
    body = await json_body(request, PresenceRequest)
    status = await request.app[QUEUE].set_presence(claims.username, Presence(body.status))
    return PresenceView(username=claims.username, status=status)


_TID = Param("ticket_id", "path", "queue ticket id")
_TKEY = Param("key", description="ticket key returned when joining the queue")

ENDPOINTS = (
    Endpoint("POST", "/api/queue", join_queue, "Join the walk-in queue", "queue",
             request=QueueJoinRequest, response=TicketView, status=201),
    Endpoint("GET", "/api/queue/{ticket_id}", poll_ticket,
             "Position, wait, join link (poll = heartbeat)", "queue", response=TicketView,
             params=(_TID, _TKEY), access=Access.KEY),
    Endpoint("DELETE", "/api/queue/{ticket_id}", leave_queue, "Leave the queue", "queue",
             response=TicketView, params=(_TID, _TKEY), access=Access.KEY, errors=(409,)),
    Endpoint("POST", "/api/queue/{ticket_id}/without-interpreter", without_interpreter,
             "Go on without an interpreter, keeping the place", "queue", response=TicketView,
             params=(_TID, _TKEY), access=Access.KEY, errors=(409,)),
    Endpoint("POST", "/api/queue/{ticket_id}/state", set_ticket_state,
             "Finish a walk-in session (staff)", "staff", request=TicketStateRequest,
             response=TicketView, params=(_TID,), access=Access.STAFF,
             roles=(Role.COUNSELOR,), errors=(404, 409)),
    Endpoint("POST", "/api/presence", set_presence, "Set yourself available or away", "staff",
             request=PresenceRequest, response=PresenceView, access=Access.STAFF,
             roles=(Role.COUNSELOR, Role.INTERPRETER), errors=(409,)),
)  # fmt: skip
