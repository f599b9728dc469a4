"""``GET /api/events``: the cross-node events as a server-sent event stream, for staff pages.

Whatever node a room lives on, its knocks, lobby changes and state changes reach
every node (``signaling.node_events``); a dashboard served by any of them reads
this stream and refreshes its authorised view at once instead of at its next
poll. Each event is ``event: <type>`` and ``data: <json>``; a comment line every
15 s keeps proxies from closing a quiet stream. The stream ends when the node stops.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from web.appkeys import NODE_EVENTS
from web.endpoints import Access, Endpoint

KEEPALIVE_S: Final = 15.0


async def events(request: web.Request) -> web.StreamResponse:
    subscription = request.app[NODE_EVENTS].subscribe()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b": connected\n\n")
        while True:
            event = await subscription.next(KEEPALIVE_S)
            if subscription.closed:
                break
            if event is None:
                await response.write(b": keepalive\n\n")
                continue
            data = event.model_dump_json()
            await response.write(f"event: {event.type}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, OSError):
        pass  # the page went away
    finally:
        subscription.close()
    return response


ENDPOINTS = (
    Endpoint("GET", "/api/events", events,
             "Knocks, lobby, room and queue changes from every node (server-sent events)",
             "staff", access=Access.STAFF, content_type="text/event-stream"),
)  # fmt: skip
