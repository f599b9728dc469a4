"""Rate-limited logging: a flood of the same failure writes one line per interval, not one each.

Hostile or broken clients can repeat one bad input thousands of times a second; a
traceback for each fills the disk and hides everything else. ``RateLimitedLog`` logs
the first occurrence of each *kind* in an interval (with its traceback, for
``exception``), counts the rest, and says how many it held back when the kind next
logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Kinds remembered at most; beyond that the oldest are forgotten (input cannot grow it).
MAX_KINDS = 256


@dataclass
class _Kind:
    last: float
    suppressed: int = 0


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}

    @property
    def suppressed(self) -> int:
        """Lines held back and not yet reported."""
        return sum(k.suppressed for k in self._kinds.values())

    def _admit(self, kind: str) -> int | None:
        """``None`` to hold this line back, else how many of its kind were held back."""
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.last < self._interval:
            seen.suppressed += 1
            return None
        held = seen.suppressed if seen is not None else 0
        self._kinds.pop(kind, None)
        self._kinds[kind] = _Kind(last=now)
        while len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        return held

    def log(self, level: int, kind: str, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``msg % args`` unless ``kind`` logged in the interval; whether it was logged."""
        held = self._admit(kind)
        if held is None:
            return False
        if held:
            msg += " (and %d more like it in the last %.0f s)"
            args = (*args, held, self._interval)
        self._logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, kind: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, kind, msg, *args)

    def info(self, kind: str, msg: str, *args: object) -> bool:
        return self.log(logging.INFO, kind, msg, *args)

    def exception(self, kind: str, msg: str, *args: object) -> bool:
        """An error with its traceback, once per interval per kind."""
        return self.log(logging.ERROR, kind, msg, *args, exc_info=True)


class RateLimitFilter(logging.Filter):
    """For a library's logger: each kind of record once per interval, without its traceback.

    engine.io and socket.io log a full traceback for every malformed frame they drop
    (an unknown packet type, an attachment that was never announced); a client can send
    thousands a second. This keeps one line per kind (logger, message, exception type)
    per interval, naming the exception instead of printing its stack, with a count of
    the rest.
    """

    def __init__(self, *, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._interval = interval_s
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.seen += 1
        exc_type = record.exc_info[1] if record.exc_info else None
        kind = f"{record.name}|{record.msg}|{type(exc_type).__name__}"
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.last < self._interval:
            seen.suppressed += 1
            return False
        held = seen.suppressed if seen is not None else 0
        self._kinds.pop(kind, None)
        self._kinds[kind] = _Kind(last=now)
        while len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        message = record.getMessage()
        if exc_type is not None:
            message += f": {type(exc_type).__name__}: {exc_type}"
            record.exc_info = None
            record.exc_text = None
        if held:
            message += f" (and {held} more like it in the last {self._interval:.0f} s)"
        record.msg, record.args = message, None
        return True
