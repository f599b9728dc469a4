"""The stall watchdog and the SIGUSR1 state dump (web.diagnostics)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest

from web.diagnostics import StallWatchdog, dump_state, install_dump_signal


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_loop_is_reported_once_per_stall_with_where_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    dog = StallWatchdog(stall_s=2.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="web.diagnostics"):
        clock.now += 1.9
        dog.check()
        assert not caplog.records
        clock.now += 0.2
        dog.check()
        clock.now += 1.0
        dog.check()  # the same stall: not logged again
        stalls = [r for r in caplog.records if "stalled" in r.getMessage()]
        assert len(stalls) == 1
        # The loop thread is this one: its stack names this test.
        assert "test_a_quiet_loop_is_reported" in stalls[0].getMessage()
        dog.beat()
        assert dog.stalls == [pytest.approx(3.1)]
        assert "after a 3.1 s stall" in caplog.records[-1].getMessage()
        clock.now += 0.5
        dog.check()
        assert len([r for r in caplog.records if "stalled" in r.getMessage()]) == 1


async def test_the_thread_sees_a_loop_held_by_a_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dog = StallWatchdog(stall_s=0.3, check_s=0.05)

    async def beating() -> None:
        while True:
            dog.beat()
            await asyncio.sleep(0.02)

    def hold_the_loop() -> None:
        time.sleep(0.8)

    with caplog.at_level(logging.WARNING, logger="web.diagnostics"):
        dog.start()
        beat = asyncio.create_task(beating())
        try:
            await asyncio.sleep(0.1)
            hold_the_loop()
            await asyncio.sleep(0.1)
        finally:
            beat.cancel()
            dog.stop()
    stalled = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalled) == 1, stalled
    assert "hold_the_loop" in stalled[0]
    assert len(dog.stalls) == 1 and 0.4 < dog.stalls[0] < 1.5


async def test_sigusr1_logs_tasks_threads_and_the_executor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()

    async def parked() -> None:
        await asyncio.Event().wait()

    waiting = [asyncio.create_task(parked()) for _ in range(3)]
    await asyncio.to_thread(lambda: None)  # the default executor exists
    text = dump_state(loop)
    assert "3  test_sigusr1_logs_tasks_threads_and_the_executor.<locals>.parked" in text
    assert "default executor: 1 of" in text and "0 job(s) waiting" in text
    assert "thread MainThread:" in text
    remove = install_dump_signal(loop)
    try:
        with caplog.at_level(logging.WARNING, logger="web.diagnostics"):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(50):
                if any("state dump" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.02)
        assert any("state dump (SIGUSR1)" in r.getMessage() for r in caplog.records)
    finally:
        remove()
        for task in waiting:
            task.cancel()
