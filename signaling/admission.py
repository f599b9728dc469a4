"""Who a counselor admitted to a room, and who they removed: kept in Redis.

An admitted resident who reloads, loses the network, or comes back after the
server restarted (or to another node) goes straight back into the call; a
removed participant's link stays refused. Both outlive any one process.
"""

from __future__ import annotations

import redis.asyncio as aioredis

_ADMITTED = "sb:room:{room}:admitted"
_BANNED = "sb:room:{room}:banned"
#: Kept this long after the last change: longer than any consultation.
TTL_S = 3 * 24 * 3600


class AdmissionStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def admit(self, room_id: str, participant_id: str) -> None:
        await self._add(_ADMITTED.format(room=room_id), participant_id)

    async def ban(self, room_id: str, participant_id: str) -> None:
        await self._add(_BANNED.format(room=room_id), participant_id)

    async def is_admitted(self, room_id: str, participant_id: str) -> bool:
        return bool(await self._redis.sismember(_ADMITTED.format(room=room_id), participant_id))

    async def is_banned(self, room_id: str, participant_id: str) -> bool:
        return bool(await self._redis.sismember(_BANNED.format(room=room_id), participant_id))

    async def forget(self, room_id: str) -> None:
        """The consultation ended: nobody can come back into it anyway."""
        await self._redis.delete(_ADMITTED.format(room=room_id), _BANNED.format(room=room_id))

    async def _add(self, key: str, member: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, member)
            pipe.expire(key, TTL_S)
            await pipe.execute()
