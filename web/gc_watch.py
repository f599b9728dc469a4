"""Garbage collections: timed, and kept off what the server made at startup.

A collection stops every thread of the process, and the loop that forwards media cannot
yield through it. A full one walks every tracked object: a serving node holds some
135,000 from its start alone (modules, schemas, models' wrappers), 0.1 s per walk on a
quiet machine and seconds on a starved one. ``make test`` met 4.9 s and 2.1 s loop stalls
in browser-test servers at a load of 21, their stacks inside an allocation (aiortc's
``RateCounter`` making a thousand buckets), where the collection that allocation set off
ran; pages read the silence as a dead path and reconnected.

* ``CollectionWatch`` times each collection (``gc.callbacks``) into the histogram
  ``seoulbridge_gc_pause_seconds{generation}`` and warns of one that held the process
  for ``warn_s`` or more, so a stall in the logs says whether a collection was it.
* ``freeze_startup`` collects once when the node is up and moves everything alive then to
  the permanent generation (``gc.freeze``, as CPython's documentation suggests for
  long-lived servers): later full collections walk only what came after, the calls.
  ``seoulbridge_gc_frozen_objects`` says how many. Only ``serve`` freezes: a test
  process that runs hundreds of servers has its own policy (``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import CollectorRegistry, Gauge, Histogram

logger = logging.getLogger(__name__)

#: From "unnoticed" to "a frozen picture and a reconnect".
PAUSE_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: A collection this long is worth a line in the log (a loop lag a page would feel).
WARN_S: Final = 0.25


class CollectionWatch:
    """Times every garbage collection of the process while installed."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        warn_s: float = WARN_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._warn_s = warn_s
        self._clock = clock
        self._started: float | None = None
        self.histogram = Histogram(
            "seoulbridge_gc_pause_seconds",
            "How long each garbage collection held the process (every thread, the media "
            "loop included), by generation",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        frozen = Gauge(
            "seoulbridge_gc_frozen_objects",
            "Objects moved out of the collector's reach at startup (gc.freeze)",
            registry=registry,
        )
        frozen.set_function(gc.get_freeze_count)
        #: The longest collection seen while installed (for logs and tests).
        self.worst_s = 0.0

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def remove(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        # Collections never overlap: the one running holds the GIL throughout.
        if phase == "start":
            self._started = self._clock()
            return
        started, self._started = self._started, None
        if started is None:
            return  # installed while a collection ran
        took = self._clock() - started
        generation = int(info.get("generation", 2))
        self.histogram.labels(str(generation)).observe(took)
        self.worst_s = max(self.worst_s, took)
        if took >= self._warn_s:
            logger.warning(
                "a garbage collection (generation %d) held the process for %.2f s "
                "(%d objects freed, %d frozen since startup)",
                generation,
                took,
                int(info.get("collected", 0)),
                gc.get_freeze_count(),
            )


def freeze_startup() -> int:
    """Collect once, then freeze everything alive: what startup made is never walked
    again. The number of objects frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(
        "froze the %d objects startup made (%.2f s): later full collections walk only "
        "what came after",
        frozen,
        time.perf_counter() - started,
    )
    return frozen
