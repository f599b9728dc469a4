"""The embedded Redis ends with the server that started it, unless another process uses it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
import redis

from tests.support.node_process import has_exited
from web.redis_store import open_redis, own_client_name


async def test_a_stop_ends_the_embedded_redis_though_it_still_lists_our_connections(
    tmp_path: Path,
) -> None:
    """Our pool's connections, closed a moment ago, may still be listed by the server:
    they are ours, not another user's (make test met an embedded Redis left running)."""
    handle = await open_redis(None, tmp_path)
    server = handle.embedded
    assert server is not None
    process = psutil.Process(server.pid)  # type: ignore[attr-defined]
    lingering = redis.Redis(
        unix_socket_path=server.socket_file,  # type: ignore[attr-defined]
        client_name=own_client_name(),
    )
    try:
        assert lingering.ping()
        await handle.aclose()
        assert has_exited(process), "the embedded Redis was left running"
    finally:
        lingering.close()
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


async def test_another_process_still_using_it_keeps_it_running(tmp_path: Path) -> None:
    handle = await open_redis(None, tmp_path)
    server = handle.embedded
    assert server is not None
    process = psutil.Process(server.pid)  # type: ignore[attr-defined]
    other = redis.Redis(
        unix_socket_path=server.socket_file,  # type: ignore[attr-defined]
        client_name="seoulbridge-1",  # a command-line process, say
    )
    try:
        assert other.ping()
        await handle.aclose()
        assert not has_exited(process, wait_s=0.5)
        assert other.ping()
    finally:
        other.close()
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
