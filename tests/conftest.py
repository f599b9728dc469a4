"""Shared fixtures: a real Redis, and a real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import redis_url_for_tests


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_url_for_tests(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def _timeout_of(request: pytest.FixtureRequest) -> float:
    marker = request.node.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(request.config.getini("timeout") or 0)


@pytest.fixture(autouse=True)
async def _task_stacks_before_timeout(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Watchdog: shortly before pytest-timeout fires, print every asyncio task's stack.

    pytest-timeout dumps threads only; a hang in asyncio shows as an idle loop there.
    """
    limit = _timeout_of(request)
    if limit <= 0:
        yield
        return

    async def watch() -> None:
        await asyncio.sleep(max(1.0, limit - 3.0))
        out = io.StringIO()
        out.write(f"\n===== asyncio tasks of {request.node.nodeid} =====\n")
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.print_stack(limit=12, file=out)
        sys.stderr.write(out.getvalue())

    watchdog = asyncio.create_task(watch(), name="test watchdog")
    try:
        yield
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
