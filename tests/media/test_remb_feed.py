"""GroupedRembFeed against aiortc's per-packet feed of the same estimator, on synthetic traces."""

from __future__ import annotations

import random

from aiortc.rate import RemoteBitrateEstimator

from media.remb_feed import GroupedRembFeed

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
