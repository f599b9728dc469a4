"""GroupedRembFeed against aiortc's per-packet feed of the same estimator, on synthetic traces."""

from __future__ import annotations

import random

from aiortc.rate import RemoteBitrateEstimator

from media.remb_feed import GroupedRembFeed, feed_for

AST_PER_MS = (1 << 18) / 1000


def _trace(seconds: float, bitrate: int, *, queue_growth_ms_per_s: float = 0.0) -> list[tuple]:
    """(abs_send_time, arrival_ms, size) of 30 fps video paced in 5 packets per frame.

    With ``queue_growth_ms_per_s`` the path's queue grows (arrivals drift later
    than sends): the delay-based estimator must see overuse and back off.
    """
    rng = random.Random(7)
    packets = []
    frame_bytes = bitrate / 8 / 30
    t_ms = 0.0
    for frame in range(int(seconds * 30)):
        send_ms = frame * 1000 / 30
        for i in range(5):
            sent = send_ms + i * 1.0
            queue = queue_growth_ms_per_s * sent / 1000
            arrival = sent + 20 + queue + rng.uniform(0, 0.5)
            ast = int(sent * AST_PER_MS) % (1 << 24)
            packets.append((ast, int(arrival), int(frame_bytes / 5)))
        t_ms = send_ms
    assert t_ms > 0
    return packets


def _run(packets: list[tuple], grouped: bool) -> list[int]:
    estimator = RemoteBitrateEstimator()
    estimates = []
    if grouped:
        feed = GroupedRembFeed(estimator.add)
        for ast, arrival, size in packets:
            result = feed.add(ast, arrival, size, 1234)
            if result is not None:
                estimates.append(result[0])
    else:
        for ast, arrival, size in packets:
            result = estimator.add(arrival, ast, size, 1234)
            if result is not None:
                estimates.append(result[0])
    return estimates


def test_grouped_feed_calls_the_estimator_once_per_group() -> None:
    packets = _trace(5, 1_000_000)
    estimator = RemoteBitrateEstimator()
    calls = 0

    def counting(*args: int) -> tuple[int, list[int]] | None:
        nonlocal calls
        calls += 1
        return estimator.add(*args)

    feed = GroupedRembFeed(counting)
    for ast, arrival, size in packets:
        feed.add(ast, arrival, size, 1)
    assert feed.packets == len(packets)
    assert calls == feed.groups
    assert calls <= len(packets) / 4  # one per frame here: 5 packets per group


def test_steady_link_estimates_agree() -> None:
    packets = _trace(12, 1_000_000)
    full = _run(packets, grouped=False)
    grouped = _run(packets, grouped=True)
    assert full and grouped
    # Both settle at the incoming rate (AIMD: up to 1.5x the throughput + 10 kb/s).
    assert abs(grouped[-1] - full[-1]) / full[-1] < 0.15, (full[-1], grouped[-1])
    assert 0.8e6 < grouped[-1] < 1.7e6


def test_congested_link_is_detected_and_the_estimate_drops() -> None:
    packets = _trace(12, 1_500_000, queue_growth_ms_per_s=40)
    full = _run(packets, grouped=False)
    grouped = _run(packets, grouped=True)
    steady = _run(_trace(12, 1_500_000), grouped=True)
    # Overuse: both back off well below the steady estimate, and below what is sent.
    assert full[-1] < 1_500_000 and grouped[-1] < 1_500_000, (full[-1], grouped[-1])
    assert grouped[-1] < 0.8 * steady[-1]
    assert abs(grouped[-1] - full[-1]) / full[-1] < 0.35, (full[-1], grouped[-1])


def test_a_publisher_back_after_a_long_silence_costs_no_walk_over_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """aiortc's rate counter walks every millisecond of a silence on the next packet: a
    publisher whose video comes back after 10 minutes (a phone off the network) cost
    600,000 steps, 0.37 s of the loop that forwards everyone's media. The feed resets the
    counter over a silence of its window or more, the state the walk ends in, without it:
    the estimates are the same."""
    from aiortc.rate import RateCounter

    walked = 0
    original = RateCounter._erase_old

    def counting(self: RateCounter, now_ms: int) -> None:
        nonlocal walked
        before = self._origin_ms
        original(self, now_ms)
        if before is not None and self._origin_ms is not None:
            walked += self._origin_ms - before

    first = _trace(3, 600_000)
    later = [((ast + int(600_000 * AST_PER_MS)) % (1 << 24), arrival + 600_000, size)
             for ast, arrival, size in _trace(3, 600_000)]  # fmt: skip

    def estimates(feed_of) -> list[int]:  # type: ignore[no-untyped-def]
        feed = feed_of(RemoteBitrateEstimator())
        found = []
        for ast, arrival, size in first + later:
            result = feed.add(ast, arrival, size, 1234)
            if result is not None:
                found.append(result[0])
        return found

    monkeypatch.setattr(RateCounter, "_erase_old", counting)
    plain = estimates(lambda e: GroupedRembFeed(e.add))
    walked_plain, walked = walked, 0
    fed = estimates(feed_for)
    assert walked_plain > 600_000  # what aiortc does alone: the whole silence, by the ms
    assert walked < 20_000, walked  # the feed: only the 6 s of media
    assert fed == plain and fed
