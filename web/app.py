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
from media.forwarding import Forwarder
from web import routes
from web.api_scheduler import scheduler_ctx
from web.api_transcripts import healthz_captions, interpretation_ctx
from web.appkeys import REDIS, SETTINGS, SIGNALING, STARTED_AT
from web.metrics import metrics
from web.services import core_services, shutdown, timed_ctx
from web.settings import Settings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",  # join links carry tokens in the query string
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=()",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'"
    ),
}


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(("/join/", "/api/")):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def healthz(request: web.Request) -> web.Response:
    await request.app[REDIS].ping()
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "status": "ok",
            "node": settings.resolved_node_id,
            "live_rooms": len(request.app[SIGNALING].live_rooms),
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


def build_app(
    settings: Settings,
    *,
    forwarder_factory: Callable[[], Forwarder] | None = None,
) -> web.Application:
    """The whole server as one aiohttp application; services start in its cleanup context."""
    app = web.Application(middlewares=[security_headers], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[STARTED_AT] = time.time()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=[],  # same origin only
        max_http_buffer_size=512 * 1024,
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    app.cleanup_ctx.append(core_services(sio, forwarder_factory))
    app.cleanup_ctx.append(timed_ctx("captions", interpretation_ctx))  # hooks into SIGNALING
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
