"""The aiohttp application: middleware, pages and routes; services come from ``web.services``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import socketio
from aiohttp import web

from kernel.languages import LANGUAGES, NATIVE_NAMES
from kernel.log_limits import RateLimitFilter
from media.forwarding import Forwarder
from web import routes
from web.api_privacy import privacy_ctx
from web.api_scheduler import scheduler_ctx
from web.api_transcripts import healthz_captions, interpretation_ctx
from web.appkeys import NODE_EVENTS, REDIS, SETTINGS, SIGNALING, STARTED_AT
from web.http_errors import json_errors, remember_upgrade
from web.metrics import metrics
from web.services import core_services, shutdown, timed_ctx
from web.settings import Settings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def security_headers_for(settings: Settings) -> dict[str, str]:
    """The headers of every response. ``connect-src`` allows this node and every node of
    the deployment (``Settings.deployment_origins``): the join step may send the page's
    socket.io and REST calls to another node."""
    origins = settings.deployment_origins
    sockets = [o.replace("https://", "wss://", 1).replace("http://", "ws://", 1) for o in origins]
    connect = " ".join(["'self'", *origins, *sockets])
    return {
        "Referrer-Policy": "no-referrer",  # join links carry tokens in the query string
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(self), microphone=(self), display-capture=()",
        "Content-Security-Policy": (
            f"default-src 'self'; connect-src {connect}; img-src 'self' data: blob:; "
            "media-src 'self' blob: mediastream:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'"
        ),
    }


#: The ``Server`` header: the product, not the version of the framework it runs on.
SERVER_HEADER = "seoulbridge"

ResponseHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def security_headers(settings: Settings) -> ResponseHook:
    """An ``on_response_prepare`` hook: on every response, raised errors included.

    (A middleware sees only the responses handlers return; an ``HTTPException`` — a 401
    from ``require_staff``, the router's 404 — is turned into a response after it.)
    """
    headers = security_headers_for(settings)

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        response.headers["Server"] = SERVER_HEADER
        if response.status >= 400 or request.path.startswith(("/join/", "/api/")):
            response.headers["Cache-Control"] = "no-store"

    return hook


async def healthz(request: web.Request) -> web.Response:
    await request.app[REDIS].ping()
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "status": "ok",
            "node": settings.resolved_node_id,
            "live_rooms": len(request.app[SIGNALING].live_rooms),
            # other nodes' knocks and room states reach this node's dashboards only while
            # its listener is subscribed (after a Redis outage it reconnects by itself)
            "events": "listening"
            if request.app[NODE_EVENTS].connected.is_set()
            else "reconnecting",
            "uptime_s": round(time.time() - request.app[STARTED_AT], 1),
            "captions": await healthz_captions(request.app),
        }
    )


def _languages_script() -> str:
    data = {"codes": list(LANGUAGES), "names": NATIVE_NAMES}
    return f"window.SB_LANGUAGES = Object.freeze({json.dumps(data, ensure_ascii=False)});\n"


async def languages_js(request: web.Request) -> web.Response:
    """The service's languages for every page, from the one list (kernel/languages.py)."""
    return web.Response(
        text=_languages_script(),
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def call_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "call.html")


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def _library_logger(name: str) -> logging.Logger:
    """A logger for python-socketio / python-engineio: warnings and up, rate-limited."""
    library = logging.getLogger(f"{__name__}.{name}")
    library.setLevel(logging.WARNING)  # at INFO they log every packet
    if not any(isinstance(f, RateLimitFilter) for f in library.filters):
        library.addFilter(RateLimitFilter(interval_s=10.0))
    return library


def build_app(
    settings: Settings,
    *,
    forwarder_factory: Callable[[], Forwarder] | None = None,
) -> web.Application:
    """The whole server as one aiohttp application; services start in its cleanup context."""
    app = web.Application(middlewares=[json_errors], client_max_size=1024 * 1024)
    app.on_response_prepare.append(security_headers(settings))
    app.on_response_prepare.append(remember_upgrade)
    app[SETTINGS] = settings
    app[STARTED_AT] = time.time()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        # Pages of the public URL's origin and the configured ones (e.g. the other
        # nodes'); engine.io refuses any other Origin. (An empty list would turn the
        # check off altogether.) Clients that send no Origin (not browsers) pass.
        cors_allowed_origins=settings.origins,
        max_http_buffer_size=512 * 1024,
        # One connection's events are handled in order, one at a time, in its own
        # receive loop: a flood from one client is back-pressured instead of spawning a
        # task per packet, and a packet socket.io cannot dispatch (an event name that
        # is not a string) fails in engine.io's guarded loop, not in a task nobody awaits.
        async_handlers=False,
        # Malformed frames are dropped by the libraries (the connection closes) and logged
        # by them with a traceback each: these loggers keep one line per kind per interval.
        logger=_library_logger("socketio"),
        engineio_logger=_library_logger("engineio"),
    )
    sio.attach(app)
    app.cleanup_ctx.append(core_services(sio, forwarder_factory))
    app.cleanup_ctx.append(timed_ctx("captions", interpretation_ctx))  # hooks into SIGNALING
    app.cleanup_ctx.append(timed_ctx("privacy", privacy_ctx))  # identity, purge, subjects
    app.cleanup_ctx.append(timed_ctx("scheduler", scheduler_ctx))
    app.on_shutdown.append(shutdown)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index_page)
    app.router.add_get("/languages.js", languages_js)
    app.router.add_get("/join/{room}", call_page)
    routes.add_routes(app)  # every /api endpoint (documented at /api/openapi.json) and pages
    app.router.add_static("/static/", STATIC_DIR, name="static")
    return app
