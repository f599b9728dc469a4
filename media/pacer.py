"""Video to one subscriber, sent no faster than their link is known to take.

A publisher's browser paces what it sends at a few times its bitrate, so a keyframe
reaches the server within tens of milliseconds, and a forwarder that sends packets
on as they come passes that burst on whole. Into a limited link it overflows the
queue in front of it: at 300 kbit/s, a 320x240 keyframe of 10-15 kB into a
7.5 kB queue, so resuming a camera lost 21 % of the packets of the next half
second, voices among them (measured, bench/poor_link.py). libwebrtc's pacer and
LiveKit's send side hold such bursts back; so does this.

While a subscriber's link has a known capacity (``LinkEstimator.capacity_bps``: what
it took at its last congestion with loss, or what a probe proved), each of their
video packets spends tokens of a bucket filled at ``factor`` times that rate (1.5:
a keyframe's burst then fits a queue of 200 ms, and the excess of a keyframe
drains at more than half the rate). A packet that finds the bucket empty, or
packets already waiting, waits its turn in the link's one queue (per-stream order
is kept); the owner's pacer task sends them as tokens come, with their send time
stamped then (a browser's delay-based estimate reads abs-send-time). Audio never
waits: it spends tokens and goes, so a waiting keyframe gives way to every voice.
Nothing waits longer than ``max_wait_s``: past that the packet goes at once (an
estimate too low must not add seconds of video latency).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from media.rtp_header import WIRE_OVERHEAD

#: Sends one held packet (its send time stamped as it leaves).
Emit = Callable[[], None]


@dataclass(frozen=True)
class PacerConfig:
    #: The rate is this many times the link's known capacity.
    factor: float = 1.5
    #: After a quiet spell, at most this much of the rate goes out at once.
    burst_s: float = 0.02
    #: No packet waits longer than this.
    max_wait_s: float = 0.4


class LinkPacer:
    """The token bucket and queue of one subscriber's link (every one of its senders)."""

    __slots__ = (
        "_at",
        "_clock",
        "_config",
        "_queue",
        "_tokens",
        "_wake",
        "held",
        "overdue",
        "rate_bps",
        "waited_max_s",
    )

    def __init__(
        self,
        config: PacerConfig | None = None,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config or PacerConfig()
        self._clock = clock
        self._wake = wake
        #: Bit/s the bucket fills at; None: not pacing (no capacity known).
        self.rate_bps: float | None = None
        self._tokens = 0.0
        self._at = clock()
        self._queue: deque[tuple[Emit, int, float]] = deque()
        #: Packets that waited, packets sent past ``max_wait_s``, the longest wait.
        self.held = 0
        self.overdue = 0
        self.waited_max_s = 0.0

    def set_capacity(self, capacity_bps: float | None, sending_bps: float = 0.0) -> None:
        """The link's known capacity (bit/s), or None to stop pacing (what waits goes).

        The rate is ``factor`` times the capacity or what the allocation sends,
        whichever is more: pacing flattens bursts, it never holds the average back.
        """
        if capacity_bps is None or capacity_bps <= 0:
            self.rate_bps = None
            self.flush()
            return
        self._refill(self._clock())
        self.rate_bps = max(capacity_bps, sending_bps) * self._config.factor

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _refill(self, now: float) -> None:
        rate = self.rate_bps
        if rate is not None:
            most = rate / 8 * self._config.burst_s
            self._tokens = min(self._tokens + rate / 8 * max(0.0, now - self._at), most)
        self._at = now

    def _charge(self, size: int) -> None:
        # A debt of at most ``max_wait_s`` of the rate: an overload (what is sent above
        # the rate for a while) must not leave every later packet waiting the bound.
        rate = self.rate_bps
        floor = -(rate or 0.0) / 8 * self._config.max_wait_s
        self._tokens = max(self._tokens - size, floor)

    def spend(self, size: int) -> None:
        """A packet that does not wait (audio) went: its bytes count all the same."""
        if self.rate_bps is not None:
            self._charge(size + WIRE_OVERHEAD)

    def admit(self, size: int) -> bool:
        """Whether a video packet of ``size`` payload bytes may go now (then it is
        counted); False: ``hold`` it."""
        if self.rate_bps is None:
            return True
        if self._queue:
            return False
        self._refill(self._clock())
        if self._tokens < 0:
            return False
        self._charge(size + WIRE_OVERHEAD)
        return True

    def hold(self, emit: Emit, size: int) -> None:
        """Queue a packet that was not admitted; the owner's task sends it (``drain``)."""
        self._queue.append((emit, size + WIRE_OVERHEAD, self._clock()))
        self.held += 1
        if len(self._queue) == 1:
            self._wake()

    def drain(self) -> bool:
        """Send what the tokens allow (and anything overdue); whether packets still wait."""
        queue = self._queue
        if not queue:
            return False
        now = self._clock()
        self._refill(now)
        max_wait = self._config.max_wait_s
        while queue:
            emit, size, since = queue[0]
            waited = now - since
            if self._tokens < 0 and waited < max_wait:
                break
            queue.popleft()
            if waited >= max_wait:
                self.overdue += 1
            self.waited_max_s = max(self.waited_max_s, waited)
            self._charge(size)
            emit()
        return bool(queue)

    def clear(self) -> None:
        """Forget what waits (the subscriber's connection is gone)."""
        self._queue.clear()

    def flush(self) -> None:
        """Send everything waiting now (pacing stops, or the link goes)."""
        queue = self._queue
        while queue:
            emit, _size, _since = queue.popleft()
            emit()
