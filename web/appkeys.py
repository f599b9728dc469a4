"""Every typed key the composition root puts on the aiohttp application.

Route modules (``web.api_*``) read their dependencies from these keys; only
``web.services`` (and ``web.app`` for the start time) writes them. All keys live
here, so no route module imports ``web.app`` (which imports every route module).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from interpretation.service import CaptionService
from scheduler.bookings import BookingService
from scheduler.queue import WalkInQueue
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.node_events import NodeEvents
from signaling.placement import NodePlacement
from signaling.rooms import RoomDirectory
from signaling.server import SignalingServer
from signaling.tokens import TokenService
from web.audit import AuditLog
from web.availability_cache import AvailabilityCache
from web.cluster import NodeProbe
from web.login_limiter import LoginLimiter
from web.loop_lag import LoopLagMonitor
from web.media_rooms import SfuRooms
from web.privacy_services import Privacy
from web.room_recording import RoomRecording
from web.settings import Settings
from web.work_gate import WorkGate

SETTINGS = web.AppKey("settings", Settings)
STARTED_AT = web.AppKey("started_at", float)
REDIS = web.AppKey("redis", aioredis.Redis)
TOKENS = web.AppKey("tokens", TokenService)
STAFF = web.AppKey("staff", StaffStore)
ROOMS = web.AppKey("rooms", RoomDirectory)
SIGNALING = web.AppKey("signaling", SignalingServer)
MEDIA_ROOMS = web.AppKey("media_rooms", SfuRooms)
RECORDING = web.AppKey("recording", RoomRecording)
CAPTIONS = web.AppKey("captions", CaptionService)
AVAILABILITY = web.AppKey("availability", AvailabilityCache)
BOOKINGS = web.AppKey("scheduler_bookings", BookingService)
TOPICS = web.AppKey("scheduler_topics", TopicStore)
QUEUE = web.AppKey("scheduler_queue", WalkInQueue)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
LOGIN_GATE = web.AppKey("login_gate", WorkGate)
LOOP_LAG = web.AppKey("loop_lag", LoopLagMonitor)
METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
PLACEMENT = web.AppKey("placement", NodePlacement)
NODE_EVENTS = web.AppKey("node_events", NodeEvents)
NODE_PROBE = web.AppKey("node_probe", NodeProbe)
AUDIT = web.AppKey("audit", AuditLog)
PRIVACY = web.AppKey("privacy", Privacy)
