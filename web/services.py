"""The composition root's services: built in one explicit order, closed in reverse.

``services_ctx`` (an aiohttp cleanup context) builds Redis, tokens, stores, the
node's placement, the SFU's rooms, the signaling server and its room
extensions, and closes them in reverse, each with a bound, so a stop takes
seconds, not minutes. ``shutdown`` (an ``on_shutdown`` hook, run before aiohttp
waits for open connections) tells every page the server is restarting and
lets go of every room and socket first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import socketio
from aiohttp import web
from aiortc import RTCIceServer
from prometheus_client import CollectorRegistry

from interpretation.redaction import redact
from media.adaptation import AdaptationConfig
from media.codecs import RoomCodecs
from media.forwarding import Forwarder
from media.negotiation import NegotiatorConfig
from media.recording_files import RecordingStorage
from media.rtp_forwarder import RtpForwarder
from scheduler.staff import StaffStore
from signaling.node_events import NodeEvents, RedisPubSub
from signaling.placement import NodePlacement
from signaling.rooms import RoomDirectory
from signaling.server import SignalingServer
from signaling.tokens import TokenService
from web.appkeys import (
    AUDIT,
    LOGIN_GATE,
    LOGIN_LIMITER,
    LOOP_LAG,
    MEDIA_ROOMS,
    METRICS_REGISTRY,
    NODE_EVENTS,
    NODE_PROBE,
    PLACEMENT,
    RECORDING,
    REDIS,
    ROOMS,
    SETTINGS,
    SIGNALING,
    STAFF,
    TOKENS,
)
from web.audit import AuditLog, chain_key
from web.cluster import NodeProbe, load_of
from web.diagnostics import StallWatchdog, install_dump_signal
from web.gc_watch import CollectionWatch
from web.login_limiter import LoginLimiter, LoginLimits
from web.loop_lag import LoopLagMonitor
from web.media_rooms import SfuRooms
from web.metrics import PlacementCollector, SignalingCollector
from web.recording_keys import key_source, load_keyring
from web.recording_store import RedisRecordingStore
from web.redis_store import open_redis
from web.room_recording import RoomRecording
from web.settings import Settings
from web.work_gate import WorkGate

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
            handle = await open_redis(
                settings.redis_url,
                settings.data_dir,
                max_connections=settings.redis_max_connections,
                pool_timeout_s=settings.redis_pool_timeout_s,
            )
            stack.push_async_callback(_timed, "redis", handle.aclose)
            app[REDIS] = handle.client
            app[TOKENS] = TokenService(settings.resolved_secret())
            app[AUDIT] = AuditLog(handle.client, chain_key(settings.resolved_secret()))
            app[STAFF] = StaffStore(handle.client)
            app[LOGIN_LIMITER] = LoginLimiter(
                handle.client,
                LoginLimits(
                    per_account=settings.login_failures_per_account,
                    per_address=settings.login_failures_per_address,
                    window_s=settings.login_window_s,
                ),
            )
            app[LOGIN_GATE] = WorkGate("sign-ins", settings.login_concurrency)
            app[ROOMS] = RoomDirectory(handle.client)
            node_id = settings.resolved_node_id
            events = NodeEvents(RedisPubSub(handle.client), node_id=node_id)
            events.start()
            stack.push_async_callback(_timed, "node events", events.aclose)
            app[NODE_EVENTS] = events
            probe = NodeProbe()
            stack.push_async_callback(_timed, "node probe", probe.aclose)
            app[NODE_PROBE] = probe
            placement = NodePlacement(
                handle.client,
                node_id=node_id,
                base_url=settings.base_url,
                room_limit=settings.room_limit,
                heartbeat_s=settings.node_heartbeat_s,
                ttl_s=settings.node_ttl_s,
            )
            app[PLACEMENT] = placement
            app[MEDIA_ROOMS] = SfuRooms(
                forwarder_factory or (lambda: rtp_forwarder(settings, codecs)),
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
                events=events,
                empty_room_grace_s=settings.empty_room_grace_s,
                redact_chat=redact,
            )
            app[SIGNALING] = signaling
            placement.set_load(load_of(signaling))
            await placement.start()
            stack.push_async_callback(_timed, "placement", placement.aclose)
            signaling.start()
            stack.push_async_callback(_timed, "signaling", signaling.aclose, ROOMS_STOP_BOUND_S)
            keys = await asyncio.to_thread(
                load_keyring,
                key_source(
                    settings.data_dir, settings.recording_keys, settings.recording_keys_file
                ),
            )
            recording = RoomRecording(
                settings.data_dir,
                signaling.messenger,
                app[MEDIA_ROOMS],
                store=RedisRecordingStore(handle.client),
                storage=RecordingStorage(keys),
                audit=app[AUDIT],
            )
            app[RECORDING] = recording
            signaling.register(recording)
            stack.push_async_callback(_timed, "recording", recording.aclose)
            registry = CollectorRegistry(auto_describe=True)
            registry.register(SignalingCollector(signaling, placement.node_id))
            watchdog = StallWatchdog()
            lag = LoopLagMonitor(registry, on_tick=watchdog.beat)
            collections = CollectionWatch(registry)
            collections.install()
            stack.callback(collections.remove)
            lag.start()
            watchdog.start()
            stack.push_async_callback(_timed, "loop lag monitor", lag.aclose)
            stack.push_async_callback(asyncio.to_thread, watchdog.stop)
            stack.callback(install_dump_signal(asyncio.get_running_loop()))
            app[LOOP_LAG] = lag
            registry.register(PlacementCollector(placement))
            app[METRICS_REGISTRY] = registry
            logger.info("seoulbridge ready on %s", settings.base_url)
            yield
            logger.info("stopping services")

    return services_ctx


def rtp_forwarder(settings: Settings, codecs: RoomCodecs) -> RtpForwarder:
    """A room's forwarder, with the adaptation the settings ask for."""
    return RtpForwarder(
        codecs,
        adaptation=AdaptationConfig(
            enabled=settings.adaptation, padding_probes=settings.padding_probes
        ),
        simulcast=settings.simulcast,
    )


#: The longest a stop waits for its rooms to close, every page having been told first.
#: Past it the rest is left to the restart: admission and recording state are in Redis
#: and recording manifests are crash-safe. Each step inside is bounded, but on a starved
#: loop the bounds add up (18.5 s measured: a room lock held by a negotiation, caption
#: threads behind a speech model still loading, peer closes waiting for them).
ROOMS_STOP_BOUND_S = 6.0


async def _timed(
    name: str, close: Callable[[], Awaitable[None]], bound_s: float | None = None
) -> None:
    """One step of the stop, with how long it took (a slow stop says where it waited);
    given up after ``bound_s`` when given."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(close(), bound_s)
    except TimeoutError:
        logger.warning(
            "%s: not done %.1f s into the stop; the rest is left to the restart", name, bound_s
        )
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
    events = app.get(NODE_EVENTS)
    if events is not None:
        events.close_subscriptions()  # open event streams end now, not at aiohttp's timeout
    placement = app.get(PLACEMENT)
    if placement is not None:
        await placement.drain()  # no new rooms are placed here while it stops
    signaling = app.get(SIGNALING)
    if signaling is not None:
        await _timed("rooms and sockets", signaling.shutdown, ROOMS_STOP_BOUND_S)
