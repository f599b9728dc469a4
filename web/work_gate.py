"""A bounded pool of in-flight work: past its size, a request is refused at once with 503.

A burst then costs the server what ``limit`` requests cost, not what the burst does:
the rest are told to come back (``Retry-After``) instead of queueing without end
behind the event loop that forwards every RTP packet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from web.http_errors import RETRY_AFTER_S, Overloaded


class WorkGate:
    def __init__(self, name: str, limit: int, *, retry_after_s: int = RETRY_AFTER_S) -> None:
        if limit < 1:
            raise ValueError(f"{name}: a work gate needs room for at least one")
        self.name = name
        self.limit = limit
        self._retry_after_s = retry_after_s
        self._busy = 0
        self.refused = 0

    @property
    def busy(self) -> int:
        return self._busy

    @asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        """Hold one place while the block runs; ``Overloaded`` when every place is held."""
        if self._busy >= self.limit:
            self.refused += 1
            raise Overloaded(
                f"Too many {self.name} at once; try again in {self._retry_after_s} s.",
                self._retry_after_s,
            )
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
