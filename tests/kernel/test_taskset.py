"""kernel.taskset: bounded close, swallowed cancellations, failures reach the owner."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kernel.taskset import TaskSet, cancel_and_wait, raise_if_cancelling

pytestmark = pytest.mark.timeout(20)


async def _forever() -> None:
    await asyncio.sleep(3600)


async def _swallows_once() -> None:
    """Like a library that catches CancelledError to clean up and returns normally."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)  # the loop goes on, as the queue dispatcher did


async def test_close_cancels_and_awaits_every_task() -> None:
    tasks = TaskSet("owner")
    a = tasks.spawn(_forever(), name="a")
    b = tasks.spawn(_forever(), name="b")
    assert tasks.names() == ["owner: a", "owner: b"]
    assert await tasks.aclose() == []
    assert a.cancelled() and b.cancelled() and len(tasks) == 0
    with pytest.raises(RuntimeError, match="closed"):
        tasks.spawn(_forever(), name="late")


async def test_a_swallowed_cancellation_is_delivered_again() -> None:
    tasks = TaskSet("owner")
    task = tasks.spawn(_swallows_once(), name="stubborn")
    await asyncio.sleep(0)
    assert await tasks.aclose(bound_s=2) == []
    assert task.done()


async def test_a_task_that_never_stops_is_reported_not_waited_for_forever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    released = asyncio.Event()

    async def immortal() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    left = await cancel_and_wait(task, bound_s=0.6)
    assert left == [task] and loop.time() - started < 2
    assert "immortal did not stop" in caplog.text and "immortal" in caplog.text
    released.set()
    await task


async def test_failures_reach_the_owner() -> None:
    seen: list[tuple[str, BaseException]] = []

    async def boom() -> None:
        raise ValueError("disk full")

    tasks = TaskSet("recorder", on_error=lambda name, exc: seen.append((name, exc)))
    task = tasks.spawn(boom(), name="write")
    await asyncio.wait([task])
    assert [(n, str(e)) for n, e in seen] == [("recorder: write", "disk full")]
    assert tasks.failures[0][0] == "recorder: write"
    await tasks.aclose()


async def test_closing_inside_an_already_cancelled_task_does_not_raise() -> None:
    """aiohttp runs cleanup inside its cancelled main task: ``cancelling()`` is already 1.

    Closing children from there must finish the job, not re-raise that old cancellation
    (which skipped every service after the first in the shutdown sequence).
    """
    closed: list[str] = []

    async def cleanup() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            for name in ("forwarder", "recorder", "redis"):
                tasks = TaskSet(name)
                tasks.spawn(_forever(), name="loop")
                await asyncio.sleep(0)
                await tasks.aclose()
                closed.append(name)

    main = asyncio.create_task(cleanup())
    await asyncio.sleep(0)
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main
    assert closed == ["forwarder", "recorder", "redis"]


async def test_the_callers_own_cancellation_propagates() -> None:
    child = asyncio.create_task(_swallows_once())
    await asyncio.sleep(0)

    async def closer() -> None:
        await cancel_and_wait(child, bound_s=10)

    outer = asyncio.create_task(closer())
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    child.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await child


async def test_raise_if_cancelling_sees_a_swallowed_request() -> None:
    async def loop_body() -> int:
        turns = 0
        while True:
            raise_if_cancelling()
            turns += 1
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(loop_body())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
