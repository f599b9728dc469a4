"""Shared fixtures: a real Redis, and a real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import sys
import time
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


#: Every this many tests, a test process collects all its garbage between two tests.
_FULL_COLLECTION_EVERY = 20
_tests_since_collection = [0]


@pytest.fixture(autouse=True)
def _no_full_collections_inside_tests() -> Iterator[None]:
    """Keep the garbage collector's full passes out of tests.

    A test process runs hundreds of servers, browsers' peers and calls one after another
    and grows big; a full collection then scans all of it. Twice in a fresh-clone
    ``make test`` the in-process server's loop stopped for 5.1 and 8.2 s inside one
    (the watchdog's stack: a weakref callback under an allocation in aiortc's
    ``RateCounter``), and the test failed on a timeout that had nothing to do with it.
    What outlives a test is frozen (``gc.freeze``: later passes skip it), and every
    ``_FULL_COLLECTION_EVERY`` tests it is thawed and collected, between two tests.
    ``SEOULBRIDGE_TEST_GC_TRACE=1`` prints how long those collections take."""
    yield
    _tests_since_collection[0] += 1
    if _tests_since_collection[0] >= _FULL_COLLECTION_EVERY:
        _tests_since_collection[0] = 0
        gc.unfreeze()
        started = time.perf_counter()
        found = gc.collect()
        if os.environ.get("SEOULBRIDGE_TEST_GC_TRACE"):
            sys.stderr.write(
                f"\n[gc] full collection between tests: {time.perf_counter() - started:.2f} s, "
                f"{found} unreachable, {len(gc.get_objects())} objects tracked\n"
            )
    gc.freeze()


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
