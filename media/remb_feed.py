"""The publisher's bandwidth estimate, fed once per send-time group instead of per packet.

The server estimates each publisher's *uplink* (delay-based, abs-send-time,
as in libwebrtc's ``RemoteBitrateEstimatorAbsSendTime``) and tells the publisher
with REMB, so a browser on a poor uplink lowers its bitrate. aiortc's estimator
does that in Python for every received video packet; at 10 rooms that was 10 %
of the server's busy time.

The estimator only looks at packets in groups: it compares each 5 ms group of
send times with the previous one (arrival spread vs send spread, and the bytes
in between). ``GroupedRembFeed`` forms those groups itself, with a few integer
operations per packet, and hands the estimator one aggregate per group: the
group's last send time and arrival, and its bytes. The estimator then runs once
per group (≈ 30–60 times a second per publisher instead of ≈ 100–300), and
its decisions lag by at most one group (tests/media/test_remb_feed.py compares
it with the per-packet feed on steady and on congested traces).

This is the *publisher's* estimate. What each *subscriber* can take (issue
10: REMB / transport-cc / receiver reports from each subscriber, and the layer
or pause chosen per subscriber in ``rtp_forwarder._Subscription``) is a
separate estimate per subscriber; a forwarder may cap the publisher's REMB at
what its subscribers need, at the one place REMB is sent
(``aiortc_internals.ReceiveHook.remb_cap``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

#: One estimator group: 5 ms in abs-send-time units (6.18 fixed point seconds).
GROUP_TICKS: Final = (5 << 18) // 1000
_AST_MOD: Final = 1 << 24
_HALF: Final = 1 << 23

#: ``add(arrival_time_ms, abs_send_time, payload_size, ssrc)`` of aiortc's estimator.
EstimatorAdd = Callable[[int, int, int, int], "tuple[int, list[int]] | None"]
#: The window of aiortc's incoming-bitrate counter (``RateCounter(1000)``: 1 ms buckets):
#: after a silence this long every bucket is empty.
RATE_WINDOW_MS: Final = 1000


class GroupedRembFeed:
    """Groups packets by send time and feeds ``estimator_add`` one aggregate per group.

    ``on_silence`` is called before a group that comes ``RATE_WINDOW_MS`` or more after the
    one fed before it: aiortc's counter would walk every millisecond of that silence, one
    by one, to empty its window (a publisher back after 10 minutes: 600,000 steps, 0.37 s
    of the loop). Resetting it first leaves the state the walk ends in (``feed_for``).
    """

    __slots__ = (
        "_add",
        "_arrival",
        "_fed_at",
        "_first",
        "_last",
        "_on_silence",
        "_size",
        "_ssrc",
        "groups",
        "packets",
    )

    def __init__(
        self, estimator_add: EstimatorAdd, on_silence: Callable[[], None] | None = None
    ) -> None:
        self._add = estimator_add
        self._on_silence = on_silence
        self._fed_at: int | None = None
        self._first: int | None = None
        self._last = 0
        self._arrival = 0
        self._size = 0
        self._ssrc = 0
        #: Counters for tests and metrics: packets seen, aggregates fed.
        self.packets = 0
        self.groups = 0

    def add(
        self, abs_send_time: int, arrival_ms: int, size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        """One received packet; returns the estimator's (bitrate, ssrcs) when it has one."""
        self.packets += 1
        first = self._first
        if first is None:
            self._start(abs_send_time, arrival_ms, size, ssrc)
            return None
        since_first = (abs_send_time - first) % _AST_MOD
        if since_first >= _HALF:
            self._size += size  # sent before this group began (reordered): count its bytes only
            return None
        if since_first <= GROUP_TICKS:
            if (abs_send_time - self._last) % _AST_MOD < _HALF:
                self._last = abs_send_time
            self._arrival = arrival_ms
            self._size += size
            return None
        result = self.flush()
        self._start(abs_send_time, arrival_ms, size, ssrc)
        return result

    def flush(self) -> tuple[int, list[int]] | None:
        """Feed the open group to the estimator now (the next packet starts a new one)."""
        if self._first is None:
            return None
        self._first = None
        self.groups += 1
        fed_at, self._fed_at = self._fed_at, self._arrival
        if (
            self._on_silence is not None
            and fed_at is not None
            and self._arrival - fed_at >= RATE_WINDOW_MS
        ):
            self._on_silence()
        return self._add(self._arrival, self._last, self._size, self._ssrc)

    def _start(self, abs_send_time: int, arrival_ms: int, size: int, ssrc: int) -> None:
        self._first = abs_send_time
        self._last = abs_send_time
        self._arrival = arrival_ms
        self._size = size
        self._ssrc = ssrc


def feed_for(estimator: Any) -> GroupedRembFeed:
    """The feed of one aiortc ``RemoteBitrateEstimator``: its ``add``, and over a silence
    of the counter's window or more, its counter emptied at once instead of walked
    (the walk would end with every bucket empty, then ``add`` resets it: the same)."""
    return GroupedRembFeed(estimator.add, estimator.incoming_bitrate.reset)
