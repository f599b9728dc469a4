"""A room's live recording state in Redis: what a restart or another node needs to go on.

One key per room, ``sb:room:{room}:recording``: the ``RecordingSnapshot`` as JSON
(consent state and answers, the open request's consent log, the people, the
current recording's number and the last segment number). Only the node holding
the room writes it. It is deleted when the consultation ends and expires
``TTL_S`` after the last change otherwise (a room nobody came back to).
"""

from __future__ import annotations

import logging
from typing import Final

import redis.asyncio as aioredis
from pydantic import ValidationError

from media.recording_model import RecordingSnapshot

logger = logging.getLogger(__name__)

_KEY: Final = "sb:room:{room}:recording"
#: Longer than any consultation (as admissions).
TTL_S: Final = 3 * 24 * 3600


def recording_key(room_id: str) -> str:
    return _KEY.format(room=room_id)


class RedisRecordingStore:
    """``media.recording_model.RecordingStateStore`` on Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def load(self, room_id: str) -> RecordingSnapshot | None:
        raw = await self._redis.get(recording_key(room_id))
        if raw is None:
            return None
        try:
            return RecordingSnapshot.model_validate_json(raw)
        except ValidationError:
            logger.error("room %s: recording state in Redis is unreadable; ignored", room_id)
            return None

    async def save(self, snapshot: RecordingSnapshot) -> None:
        await self._redis.set(recording_key(snapshot.room_id), snapshot.model_dump_json(), ex=TTL_S)

    async def delete(self, room_id: str) -> None:
        await self._redis.delete(recording_key(room_id))
