"""Owned background tasks: one idiom for spawning, reporting and closing them.

As in LiveKit Agents (``utils.aio.cancel_and_wait``) and aiortc (each object owns
its tasks and its ``stop()`` awaits them), every background task here has an
owner holding a ``TaskSet``:

* ``spawn(coro, name=...)`` keeps a strong reference and names the task;
* a task that fails reports its exception to the owner (``on_error``), never
  only to the garbage collector;
* ``aclose()`` cancels and awaits every task *with a bound*. A library that
  swallows a cancellation (redis-py, aiortc) gets the cancellation again until
  the bound; what is still running then is logged with its stack, so shutdown
  can never hang on one task. The caller's own cancellation is re-raised.

Loops that call into such a library call ``raise_if_cancelling()`` each turn.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How long ``aclose()`` waits for cancelled tasks by default.
CLOSE_TIMEOUT_S: Final = 5.0
#: Re-deliver the cancellation this often while waiting (a library may have eaten it).
_RECANCEL_EVERY_S: Final = 0.25

ErrorHandler = Callable[[str, BaseException], None]


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if the current task has a pending cancellation request.

    A library call can absorb the ``CancelledError`` thrown into it and return
    normally; the task's ``cancelling()`` count still says it was asked to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _stack_of(task: asyncio.Task[Any]) -> str:
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()


async def cancel_and_wait(
    tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any]],
    *,
    bound_s: float = CLOSE_TIMEOUT_S,
    owner: str = "",
) -> list[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait until they finish, at most ``bound_s`` seconds.

    The tasks' own ``CancelledError`` and exceptions are not raised here (a
    ``TaskSet`` reports exceptions to its owner). If the *caller* is cancelled
    while waiting, that cancellation propagates. Returns the tasks still running
    after ``bound_s`` (each logged with its stack); empty when all finished.
    """
    pending = {tasks} if isinstance(tasks, asyncio.Task) else set(tasks)
    if asyncio.current_task() in pending:
        raise RuntimeError("a task cannot cancel-and-wait for itself")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _done, pending = await asyncio.wait(pending, timeout=min(_RECANCEL_EVERY_S, remaining))
    for task in pending:
        logger.error(
            "%stask %s did not stop within %.1f s of being cancelled:\n%s",
            f"{owner}: " if owner else "",
            task.get_name(),
            bound_s,
            _stack_of(task),
        )
    return sorted(pending, key=lambda t: t.get_name())


class TaskSet:
    """The background tasks of one owner."""

    def __init__(
        self,
        owner: str,
        *,
        on_error: ErrorHandler | None = None,
        close_bound_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self.owner = owner
        self._on_error = on_error
        self._close_bound_s = close_bound_s
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: (task name, exception) of every task that failed, newest last (bounded).
        self.failures: list[tuple[str, BaseException]] = []

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    def names(self) -> list[str]:
        return sorted(t.get_name() for t in self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``coro`` as a task of this owner."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.owner}: closed, cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.owner}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self.failures = [*self.failures[-19:], (task.get_name(), exc)]
        if self._on_error is not None:
            try:
                self._on_error(task.get_name(), exc)
            except Exception:
                logger.exception("%s: error handler failed for %s", self.owner, task.get_name())
        else:
            logger.error("%s: task %s failed", self.owner, task.get_name(), exc_info=exc)

    async def cancel(self, task: asyncio.Task[Any], *, bound_s: float | None = None) -> None:
        """Cancel one task of this set and wait for it (bounded)."""
        await cancel_and_wait(
            task, bound_s=self._close_bound_s if bound_s is None else bound_s, owner=self.owner
        )

    async def aclose(self, *, bound_s: float | None = None) -> list[asyncio.Task[Any]]:
        """Cancel every task and wait for them (bounded); no new task starts after this."""
        self._closed = True
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        return await cancel_and_wait(
            tasks, bound_s=self._close_bound_s if bound_s is None else bound_s, owner=self.owner
        )
