"""REST for the counselor's dashboard page: one read of today's work, polled every 3 s."""

from __future__ import annotations

from aiohttp import web

from scheduler.dashboard import DashboardReader
from scheduler.wire import Dashboard
from web.appkeys import BOOKINGS, QUEUE, ROOMS, STAFF
from web.auth import require_staff
from web.endpoints import Access, Endpoint


async def dashboard(request: web.Request) -> Dashboard:
    claims = require_staff(request)
    app = request.app
    reader = DashboardReader(
        bookings=app[BOOKINGS], queue=app[QUEUE], staff=app[STAFF], rooms=app[ROOMS]
    )
    return await reader.for_staff(claims.username, claims.role)


ENDPOINTS = (
    Endpoint("GET", "/api/dashboard", dashboard, "Today's bookings, queue, lobby knocks",
             "staff", response=Dashboard, access=Access.STAFF),
)  # fmt: skip
