"""A room's chat, kept in Redis: bounded, redacted, back after a reload or a restart.

Every line passes through the redactor it is given (the composition root hands it
``interpretation.redaction.redact``, so personal numbers are masked) before it is
sent or stored, so what a page shows live is what comes back in ``joined.chat``.
The list keeps the last ``KEPT`` lines and expires with the room's other state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from pydantic import ValidationError

from signaling.protocol import ChatMessage

logger = logging.getLogger(__name__)

_CHAT = "sb:room:{room}:chat"
#: Lines kept per room (the oldest go first).
KEPT = 200
#: Kept this long after the last line: longer than any consultation.
TTL_S = 3 * 24 * 3600

Redactor = Callable[[str], str]


class ChatStore:
    def __init__(self, redis: aioredis.Redis, redact: Redactor) -> None:
        self._redis = redis
        self._redact = redact

    async def add(
        self, room_id: str, *, participant_id: str, name: str, text: str, ts: float
    ) -> ChatMessage:
        """Store one line (redacted) and return it as it is to be sent."""
        line = ChatMessage(participant_id=participant_id, name=name, text=self._redact(text), ts=ts)
        key = _CHAT.format(room=room_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, line.model_dump_json())
            pipe.ltrim(key, -KEPT, -1)
            pipe.expire(key, TTL_S)
            await pipe.execute()
        return line

    async def history(self, room_id: str) -> list[ChatMessage]:
        """The room's kept lines, oldest first."""
        raw: list[bytes | str] = await self._redis.lrange(_CHAT.format(room=room_id), 0, -1)
        lines = []
        for item in raw:
            try:
                lines.append(ChatMessage.model_validate_json(item))
            except ValidationError:
                logger.warning("room %s: a stored chat line could not be read", room_id)
        return lines

    async def forget(self, room_id: str) -> None:
        """The consultation ended: its chat is not kept."""
        await self._redis.delete(_CHAT.format(room=room_id))
