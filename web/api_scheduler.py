"""The scheduler in the web app: its services' lifetime, and the staff and resident pages.

Wire-up in the composition root (``web.app``)::

    app.cleanup_ctx.append(api_scheduler.scheduler_ctx)   # after the ctx that fills REDIS...
    routes.add_routes(app)                                # the REST table and these pages

``scheduler_ctx`` reads REDIS, STAFF, ROOMS, TOKENS and SETTINGS and puts the booking
service, the topic store and the walk-in queue on the app (``web.appkeys``); the queue's
dispatcher task runs until the app closes. The REST handlers are in ``api_bookings``,
``api_queue``, ``api_dashboard`` and ``api_staff_admin``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from scheduler.booking_store import BookingStore
from scheduler.bookings import BookingService
from scheduler.queue import WalkInQueue
from scheduler.topics import TopicStore
from web.appkeys import AVAILABILITY, BOOKINGS, QUEUE, REDIS, ROOMS, SETTINGS, STAFF, TOKENS, TOPICS
from web.availability_cache import AvailabilityCache

STATIC_DIR = Path(__file__).parent / "static"
#: Pages served by the scheduler: path -> file in web/static.
PAGES = {"/book": "book.html", "/dashboard": "dashboard.html", "/admin": "admin.html"}


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the scheduler's services; run the walk-in dispatcher until shutdown."""
    redis = app[REDIS]
    settings = app[SETTINGS]
    topics = TopicStore(redis)
    await topics.ensure_defaults()
    app[TOPICS] = topics
    app[BOOKINGS] = bookings = BookingService(
        store=BookingStore(redis),
        staff=app[STAFF],
        topics=topics,
        rooms=app[ROOMS],
        tokens=app[TOKENS],
        base_url=settings.base_url,
        horizon_days=settings.booking_horizon_days,
    )
    app[AVAILABILITY] = AvailabilityCache(bookings, limit=settings.availability_concurrency)
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


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / name)

    return page


def add_pages(app: web.Application) -> None:
    for path, name in PAGES.items():
        app.router.add_get(path, _page(name))
