"""Worker threads for blocking calls (Vosk, CTranslate2), closed with a bound.

The event loop forwards every RTP packet, so decoding and translating run here.
A blocking call cannot be cancelled, so :meth:`WorkerThreads.aclose` cancels what
has not started, waits a bounded time for what is running, and then reports the
calls still busy instead of waiting for them forever (a stuck decoder must not
hang shutdown). Python still joins those threads when the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

from interpretation.errors import ShuttingDown

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long :meth:`WorkerThreads.aclose` waits for running calls by default.
CLOSE_BOUND_S: Final = 5.0


class WorkerThreads:
    """A named pool of worker threads, one per core unless told otherwise."""

    def __init__(self, name: str, workers: int | None = None) -> None:
        self.name = name
        self.workers = workers or os.cpu_count() or 1
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._futures: set[Future[Any]] = set()
        self._closed = False

    @property
    def busy(self) -> int:
        """Calls submitted and not finished (queued or running)."""
        with self._lock:
            return len(self._futures)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread. Cancelling the caller abandons the call."""
        if self._closed:
            raise ShuttingDown(f"{self.name}: closed, captions are shutting down")
        future = self._executor.submit(fn, *args)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    async def aclose(self, *, bound_s: float = CLOSE_BOUND_S) -> bool:
        """Take no more work, drop what is queued, wait up to ``bound_s`` for what runs.

        Returns False (and logs) when calls were still running at the bound.
        """
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = [f for f in self._futures if not f.done()]
        if not running:
            return True
        waiters = [asyncio.wrap_future(f) for f in running]
        for waiter in waiters:
            waiter.add_done_callback(_retrieve)  # its caller got the outcome already
        _done, late = await asyncio.wait(waiters, timeout=bound_s)
        if late:
            log.error(
                "%s: %d call(s) still running %.1f s after close; not waiting for them",
                self.name,
                len(late),
                bound_s,
            )
            return False
        return True

    def shutdown(self) -> None:
        """Blocking close for synchronous callers: waits for running calls."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
