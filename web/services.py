"""The composition root's services: built in one explicit order, closed in reverse.

``services_ctx`` (an aiohttp cleanup context) builds Redis, tokens, stores, the
node's placement, the SFU's rooms, the signaling server and its room
extensions, and closes them in reverse, each with a bound, so a stop takes
seconds, not minutes. ``shutdown`` (an ``on_shutdown`` hook, run before aiohttp
waits for open connections) tells every page the server is restarting and
lets go of every room and socket first.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import socketio
from aiohttp import web
from aiortc import RTCIceServer
from prometheus_client import CollectorRegistry

from interpretation.redaction import redact
from media.codecs import RoomCodecs
from media.forwarding import Forwarder
from media.negotiation import NegotiatorConfig
from media.rtp_forwarder import RtpForwarder
from scheduler.staff import StaffStore
from signaling.placement import NodePlacement
from signaling.rooms import RoomDirectory
from signaling.server import SignalingServer
from signaling.tokens import TokenService
from web.appkeys import (
    MEDIA_ROOMS,
    METRICS_REGISTRY,
    REDIS,
    ROOMS,
    SETTINGS,
    SIGNALING,
    STAFF,
    TOKENS,
)
from web.media_rooms import SfuRooms
from web.metrics import SignalingCollector
from web.redis_store import open_redis
from web.room_recording import RoomRecording

logger = logging.getLogger(__name__)

ForwarderFactory = Callable[[], Forwarder]
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def core_services(
    sio: socketio.AsyncServer, forwarder_factory: ForwarderFactory | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that owns Redis, signaling and media for the app's lifetime."""

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        codecs = RoomCodecs(video=settings.video_codec)
        async with contextlib.AsyncExitStack() as stack:
            handle = await open_redis(settings.redis_url, settings.data_dir)
            stack.push_async_callback(_timed, "redis", handle.aclose)
            app[REDIS] = handle.client
            app[TOKENS] = TokenService(settings.resolved_secret())
            app[STAFF] = StaffStore(handle.client)
            app[ROOMS] = RoomDirectory(handle.client)
            placement = NodePlacement(
                handle.client, node_id=settings.resolved_node_id, base_url=settings.base_url
            )
            await placement.start()
            stack.push_async_callback(_timed, "placement", placement.aclose)
            app[MEDIA_ROOMS] = SfuRooms(
                forwarder_factory or (lambda: RtpForwarder(codecs)),
                ice_servers=[RTCIceServer(**s.model_dump()) for s in settings.ice_servers],
                negotiation=NegotiatorConfig(
                    answer_timeout_s=settings.answer_timeout_s, resends=settings.offer_resends
                ),
            )
            signaling = SignalingServer(
                sio,
                redis=handle.client,
                tokens=app[TOKENS],
                rooms=app[ROOMS],
                media_factory=app[MEDIA_ROOMS],
                ice_servers=settings.ice_servers,
                placement=placement,
                empty_room_grace_s=settings.empty_room_grace_s,
                redact_chat=redact,
            )
            app[SIGNALING] = signaling
            signaling.start()
            stack.push_async_callback(_timed, "signaling", signaling.aclose)
            recording = RoomRecording(settings.data_dir, signaling.messenger, app[MEDIA_ROOMS])
            signaling.register(recording)
            stack.push_async_callback(_timed, "recording", recording.aclose)
            registry = CollectorRegistry(auto_describe=True)
            registry.register(SignalingCollector(signaling, placement.node_id))
            app[METRICS_REGISTRY] = registry
            logger.info("seoulbridge ready on %s", settings.base_url)
            yield
            logger.info("stopping services")

    return services_ctx


async def _timed(name: str, close: Callable[[], Awaitable[None]]) -> None:
    """One step of the stop, with how long it took (a slow stop says where it waited)."""
    started = time.monotonic()
    try:
        await close()
    finally:
        logger.info("stopped %s in %.2f s", name, time.monotonic() - started)


def timed_ctx(name: str, ctx: CleanupCtx) -> CleanupCtx:
    """A cleanup context whose exit is logged with its duration."""

    async def timed(app: web.Application) -> AsyncIterator[None]:
        it = ctx(app)
        await anext(it)
        yield
        started = time.monotonic()
        try:
            await anext(it, None)
        finally:
            logger.info("stopped %s in %.2f s", name, time.monotonic() - started)

    return timed


async def shutdown(app: web.Application) -> None:
    """``on_shutdown``: tell every page, close rooms and sockets before aiohttp waits on them."""
    signaling = app.get(SIGNALING)
    if signaling is not None:
        await _timed("rooms and sockets", signaling.shutdown)
