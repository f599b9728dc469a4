"""A caption sink that keeps what it is given (the composition root sends to the room instead)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from interpretation.events import CaptionEvent


class ListSink:
    def __init__(self) -> None:
        self.events: list[CaptionEvent] = []
        self.changed = asyncio.Event()

    async def publish(self, event: CaptionEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(
        self, predicate: Callable[[CaptionEvent], bool], timeout: float = 30.0
    ) -> CaptionEvent:
        async with asyncio.timeout(timeout):
            while True:
                for e in self.events:
                    if predicate(e):
                        return e
                self.changed.clear()
                await self.changed.wait()
