"""Event-loop lag: how late the loop that forwards every RTP packet runs what is due.

A task asks to wake every ``interval_s`` and records how late it woke: a handler that
holds the loop for 200 ms shows as a 200 ms observation, which is a 200 ms gap in
everyone's video. Exposed in ``/metrics`` as the histogram
``seoulbridge_event_loop_lag_seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Histogram

from kernel.taskset import TaskSet

#: Buckets from "unnoticeable" to "frozen picture".
LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLagMonitor:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._interval = interval_s
        #: Called every time the timer runs (the stall watchdog's heartbeat).
        self._on_tick = on_tick
        self._clock = clock
        self.histogram = Histogram(
            "seoulbridge_event_loop_lag_seconds",
            "How late the event loop ran a timer due every "
            f"{interval_s * 1000:.0f} ms (time it was held by something else)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        #: The largest lag seen since start (for logs and tests).
        self.worst_s = 0.0
        self._tasks = TaskSet("loop lag")

    def start(self) -> None:
        self._tasks.spawn(self._watch(), name="watch")

    async def _watch(self) -> None:
        while True:
            started = self._clock()
            await asyncio.sleep(self._interval)
            lag = max(0.0, self._clock() - started - self._interval)
            self.histogram.observe(lag)
            self.worst_s = max(self.worst_s, lag)
            if self._on_tick is not None:
                self._on_tick()

    async def aclose(self) -> None:
        await self._tasks.aclose()
