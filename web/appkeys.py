"""Typed keys for what the composition root puts on the aiohttp application.

Route modules (``web.api_*``) read their dependencies from these keys; only
``web.app`` writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from aiohttp import web

from scheduler.staff import StaffStore
from signaling.tokens import TokenService
from web.settings import Settings

if TYPE_CHECKING:
    from signaling.rooms import RoomDirectory

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
TOKENS = web.AppKey("tokens", TokenService)
STAFF = web.AppKey("staff", StaffStore)
ROOMS: web.AppKey[RoomDirectory] = web.AppKey("rooms")
