"""Free slots for the booking page, cheap to ask for again: cached, shared, bounded.

``GET /api/availability`` is public and costs tens of milliseconds of CPU for two
months of slots. Here:

- identical questions within ``ttl_s`` get the same serialized answer (and questions
  asked while it is being computed wait for that one computation: single flight);
  a booking made, moved or cancelled through this node starts afresh at once;
  other nodes' changes show within ``ttl_s`` (a taken slot is still refused, 409);
- the computation yields to the event loop between days (``BookingService``);
- at most ``limit`` distinct computations run at once; past that, 503 + Retry-After;
- at most ``max_entries`` answers are kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from aiohttp import web

from kernel.languages import Language
from scheduler.bookings import BookingService
from web.work_gate import WorkGate


@dataclass(frozen=True)
class Question:
    """One availability request, as a cache key (with the service's change count)."""

    changes: int
    topic_id: str
    language: Language
    timezone: str
    needs_interpreter: bool | None
    first_day: date | None
    days: int


@dataclass(frozen=True)
class _Entry:
    expires: float
    body: bytes


class AvailabilityCache:
    def __init__(
        self,
        service: BookingService,
        *,
        ttl_s: float = 5.0,
        limit: int = 4,
        max_entries: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._ttl = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self.gate = WorkGate("availability requests", limit)
        self._answers: OrderedDict[Question, _Entry] = OrderedDict()
        self._computing: dict[Question, asyncio.Future[bytes]] = {}
        self.computed = 0

    async def response(
        self,
        *,
        topic_id: str,
        language: Language,
        timezone: str,
        needs_interpreter: bool | None,
        first_day: date | None,
        days: int,
    ) -> web.Response:
        key = Question(
            self._service.changes, topic_id, language, timezone, needs_interpreter,
            first_day, days,
        )  # fmt: skip
        body = await self._body(key)
        return web.Response(body=body, content_type="application/json")

    async def _body(self, key: Question) -> bytes:
        now = self._clock()
        cached = self._answers.get(key)
        if cached is not None and cached.expires > now:
            return cached.body
        pending = self._computing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        async with self.gate.enter():  # Overloaded (503) when every place is taken
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._computing[key] = future
            try:
                body = await self._compute(key)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: waiters (if any) get it, else no warning
                raise
            else:
                future.set_result(body)
            finally:
                del self._computing[key]
        self.computed += 1
        self._answers[key] = _Entry(expires=self._clock() + self._ttl, body=body)
        self._answers.move_to_end(key)
        while len(self._answers) > self._max_entries:
            self._answers.popitem(last=False)
        return body

    async def _compute(self, key: Question) -> bytes:
        result = await self._service.availability(
            topic_id=key.topic_id,
            language=key.language,
            timezone=key.timezone,
            needs_interpreter=key.needs_interpreter,
            first_day=key.first_day,
            days=key.days,
        )
        return result.model_dump_json().encode()  # ~2 ms for two months
