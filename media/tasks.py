"""Closing owned tasks: cancel, await, and re-raise only our own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it to finish.

    The task's own ``CancelledError`` is absorbed; if the caller is being
    cancelled while waiting, that cancellation propagates.
    """
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
