"""The composition root: builds every service from the settings and wires them together."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import socketio
from aiohttp import web
from prometheus_client import CollectorRegistry

from media.codecs import RoomCodecs
from media.forwarding import Forwarder
from media.rtp_forwarder import RtpForwarder
from scheduler.staff import StaffStore
from signaling.placement import NodePlacement
from signaling.protocol import IceServerInfo
from signaling.rooms import RoomDirectory
from signaling.server import SignalingServer
from signaling.tokens import TokenService
from web import routes
from web.api_scheduler import scheduler_ctx
from web.api_transcripts import interpretation_ctx
from web.appkeys import (
    METRICS_REGISTRY,
    REDIS,
    ROOMS,
    SETTINGS,
    SIGNALING,
    STAFF,
    STARTED_AT,
    TOKENS,
)
from web.metrics import SignalingCollector, metrics
from web.redis_store import open_redis
from web.room_recording import RoomRecording
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
        }
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
    codecs = RoomCodecs(video=settings.video_codec)

    def rtp_forwarder() -> Forwarder:
        """Encoded RTP forwarding: no decode, no re-encode (media.rtp_forwarder)."""
        return RtpForwarder(codecs)

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

    async def services(app: web.Application) -> AsyncIterator[None]:
        handle = await open_redis(settings.redis_url, settings.data_dir)
        app[REDIS] = handle.client
        app[TOKENS] = TokenService(settings.resolved_secret())
        app[STAFF] = StaffStore(handle.client)
        app[ROOMS] = RoomDirectory(handle.client)
        placement = NodePlacement(
            handle.client, node_id=settings.resolved_node_id, base_url=settings.base_url
        )
        await placement.start()
        app[SIGNALING] = SignalingServer(
            sio,
            tokens=app[TOKENS],
            rooms=app[ROOMS],
            forwarder_factory=forwarder_factory or rtp_forwarder,
            ice_servers=[IceServerInfo(**s.model_dump()) for s in settings.ice_servers],
            placement=placement,
            empty_room_grace_s=settings.empty_room_grace_s,
        )
        recording = RoomRecording(settings.data_dir, app[SIGNALING])
        app[SIGNALING].extensions.append(recording)
        registry = CollectorRegistry(auto_describe=True)
        registry.register(SignalingCollector(app[SIGNALING], placement.node_id))
        app[METRICS_REGISTRY] = registry
        logger.info("seoulbridge ready on %s", settings.base_url)
        try:
            yield
        finally:
            await app[SIGNALING].aclose()
            await sio.shutdown()
            await recording.aclose()
            await placement.aclose()
            await handle.aclose()

    app.cleanup_ctx.append(services)
    app.cleanup_ctx.append(interpretation_ctx)  # hooks captions into SIGNALING
    app.cleanup_ctx.append(scheduler_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index_page)
    app.router.add_get("/join/{room}", call_page)
    routes.add_routes(app)  # every /api endpoint (documented at /api/openapi.json) and pages
    app.router.add_static("/static/", STATIC_DIR, name="static")
    return app
