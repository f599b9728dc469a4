"""What the server is doing when it seems stuck: a stall watchdog and a state dump.

* :class:`StallWatchdog` is a thread that watches the event loop's heartbeat (the
  loop-lag monitor's timer, every 50 ms). When the loop has not run it for
  ``stall_s``, it logs once per stall where the loop's thread is (its Python stack)
  and, when the loop runs again, how long the stall lasted. A loop held by a
  handler shows the handler; a loop that is simply not scheduled (a machine out of
  CPU) shows it waiting in ``select`` — the two look the same from outside.
* ``SIGUSR1`` logs a dump (:func:`dump_state`): the asyncio tasks counted by what
  they run, the stack of every thread, and the default executor's queue (where
  ``asyncio.to_thread`` and aiohttp's static files wait for a worker). It goes to the
  server's log; nothing in it is personal data (code locations and counts only).

Both are for support staff and for tests that want to know where time went.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

logger = logging.getLogger(__name__)

#: A loop that has not run its 50 ms timer for this long is stalled.
STALL_S: Final = 2.0


def _thread_stack(ident: int, limit: int = 12) -> str:
    frame = sys._current_frames().get(ident)
    if frame is None:
        return "  (no frame)"
    return "".join(traceback.format_stack(frame, limit=limit)).rstrip()


class StallWatchdog:
    """A daemon thread that logs the loop thread's stack while the loop does not run.

    ``beat()`` is called from the loop (the loop-lag monitor's timer); ``stop()``
    ends the thread within one check interval.
    """

    def __init__(
        self,
        *,
        stall_s: float = STALL_S,
        check_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = logger,
    ) -> None:
        self._stall_s = stall_s
        self._check_s = check_s
        self._clock = clock
        self._log = log
        self._last = clock()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Stalls seen (their lengths, seconds), for tests and the dump.
        self.stalls: list[float] = []
        self._stalled_since: float | None = None

    def beat(self) -> None:
        now = self._clock()
        since = self._stalled_since
        self._last = now
        if since is not None:
            self._stalled_since = None
            length = now - since
            self.stalls.append(length)
            self._log.warning("event loop ran again after a %.1f s stall", length)

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._last = self._clock()
        self._thread = threading.Thread(target=self._run, name="stall watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._check_s + 1.0)

    def check(self) -> None:
        """One look at the heartbeat (the thread's body; called directly by tests)."""
        last = self._last
        quiet = self._clock() - last
        if quiet < self._stall_s or self._stalled_since is not None:
            return
        self._stalled_since = last
        self._log.warning(
            "event loop stalled: no timer has run for %.1f s; its thread is at:\n%s",
            quiet,
            _thread_stack(self._loop_thread),
        )

    def _run(self) -> None:
        while not self._stop.wait(self._check_s):
            try:
                self.check()
            except Exception:  # a watchdog that dies says nothing more: log and go on
                self._log.exception("stall watchdog check failed")


def dump_state(loop: asyncio.AbstractEventLoop, *, most: int = 25) -> str:
    """Tasks by coroutine, every thread's stack, the default executor's backlog."""
    lines: list[str] = []
    tasks = asyncio.all_tasks(loop)
    kinds = collections.Counter(
        getattr(t.get_coro(), "__qualname__", type(t.get_coro()).__name__) for t in tasks
    )
    lines.append(f"{len(tasks)} asyncio task(s); the most common:")
    lines.extend(f"  {n:5d}  {name}" for name, n in kinds.most_common(most))
    executor = getattr(loop, "_default_executor", None)
    if isinstance(executor, ThreadPoolExecutor):
        lines.append(
            f"default executor: {len(executor._threads)} of {executor._max_workers} "
            f"thread(s), {executor._work_queue.qsize()} job(s) waiting"
        )
    else:
        lines.append("default executor: not started")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident in sys._current_frames():
        lines.append(f"thread {names.get(ident, ident)}:")
        lines.append(_thread_stack(ident, limit=8))
    return "\n".join(lines)


def install_dump_signal(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Log :func:`dump_state` on SIGUSR1; returns the function that removes it."""

    def dump() -> None:
        logger.warning("state dump (SIGUSR1):\n%s", dump_state(loop))

    try:
        loop.add_signal_handler(signal.SIGUSR1, dump)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
        return lambda: None

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGUSR1)

    return remove
