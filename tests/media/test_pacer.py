"""The per-subscriber pacer (media.pacer): bursts of video held to a rate the link is
known to take, audio never waiting, order kept, nothing waiting too long."""

from __future__ import annotations

from media.pacer import LinkPacer, PacerConfig
from media.rtp_header import WIRE_OVERHEAD


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def _sent(log: list[tuple[float, int]], clock: Clock, n: int):
    return lambda: log.append((clock.t, n))


def test_without_a_known_capacity_nothing_waits() -> None:
    pacer = LinkPacer(clock=Clock())
    assert all(pacer.admit(1200) for _ in range(100))
    assert pacer.waiting == 0


def test_a_keyframe_burst_leaves_at_the_paced_rate_and_audio_does_not_wait() -> None:
    """At 300 kbit/s known (450 kbit/s paced) a 12 kB keyframe that arrives at once —
    10-15 kB into a 7.5 kB queue was lost whole at 300 kbit/s — goes out over ~210 ms."""
    clock = Clock()
    woken = []
    pacer = LinkPacer(PacerConfig(), wake=lambda: woken.append(clock.t), clock=clock)
    pacer.set_capacity(300_000)
    clock.t += 1.0  # a quiet second: only burst_s of tokens
    log: list[tuple[float, int]] = []
    for n in range(10):  # 10 packets of 1,200 bytes, all at once
        if pacer.admit(1200):
            log.append((clock.t, n))
        else:
            pacer.hold(_sent(log, clock, n), 1200)
    assert len(log) == 1 and pacer.waiting == 9 and len(woken) == 1
    voices = 0
    while pacer.waiting:
        clock.t += 0.01
        pacer.spend(100)  # a voice every 10 ms goes at once, and counts
        voices += 1
        pacer.drain()
    assert [n for _, n in log] == list(range(10))  # in order
    took = log[-1][0] - log[0][0]
    paced = (9 * (1200 + WIRE_OVERHEAD) + voices * (100 + WIRE_OVERHEAD)) * 8 / 450_000
    assert 0.8 * paced <= took <= paced + 0.02, (took, paced)
    assert pacer.overdue == 0 and pacer.held == 9


def test_while_packets_wait_a_new_one_queues_behind_them() -> None:
    clock = Clock()
    pacer = LinkPacer(clock=clock)
    pacer.set_capacity(100_000)
    log: list[tuple[float, int]] = []
    assert pacer.admit(1200)
    pacer.hold(_sent(log, clock, 1), 1200)
    clock.t += 0.5  # tokens for the small one by now...
    assert not pacer.admit(100)  # ... but one waits: the new one goes behind it
    pacer.hold(_sent(log, clock, 2), 100)
    while pacer.drain():
        clock.t += 0.01
    assert [n for _, n in log] == [1, 2]


def test_nothing_waits_longer_than_the_bound() -> None:
    """An estimate too low must not add seconds of video latency."""
    clock = Clock()
    pacer = LinkPacer(PacerConfig(max_wait_s=0.4), clock=clock)
    pacer.set_capacity(10_000)  # far below what arrives
    log: list[tuple[float, int]] = []
    pacer.admit(1200)
    for n in range(20):
        pacer.hold(_sent(log, clock, n), 1200)
    for _ in range(45):
        clock.t += 0.01
        pacer.drain()
    assert len(log) == 20 and pacer.overdue >= 15
    assert pacer.waited_max_s < 0.45


def test_pacing_never_holds_back_the_average_the_allocation_sends() -> None:
    """A capacity known from an old congestion (a CPU stall on loopback) below what the
    allocation sends now: the rate follows what is sent, bursts only are flattened."""
    clock = Clock()
    pacer = LinkPacer(clock=clock)
    pacer.set_capacity(300_000, sending_bps=1_200_000)
    assert pacer.rate_bps == 1_800_000
    pacer.set_capacity(None)
    assert pacer.rate_bps is None and pacer.admit(10_000)


def test_stopping_pacing_sends_what_waits_and_a_gone_link_forgets_it() -> None:
    clock = Clock()
    pacer = LinkPacer(clock=clock)
    pacer.set_capacity(50_000)
    log: list[tuple[float, int]] = []
    pacer.admit(1200)
    pacer.hold(_sent(log, clock, 1), 1200)
    pacer.set_capacity(None)
    assert [n for _, n in log] == [1] and pacer.waiting == 0
    pacer.set_capacity(50_000)
    pacer.admit(1200)
    pacer.hold(_sent(log, clock, 2), 1200)
    pacer.clear()
    clock.t += 1
    assert not pacer.drain() and [n for _, n in log] == [1]


def test_an_overload_leaves_no_debt_longer_than_the_bound() -> None:
    """Overdue packets still count: unbounded, an overload left a debt of megabytes and
    every later packet waited the whole bound (found in review)."""
    clock = Clock()
    pacer = LinkPacer(PacerConfig(max_wait_s=0.4), clock=clock)
    pacer.set_capacity(100_000)  # 150 kbit/s
    log: list[tuple[float, int]] = []
    pacer.admit(1200)
    for n in range(300):  # 360 kB at once: far more than the rate
        pacer.hold(_sent(log, clock, n), 1200)
    for _ in range(60):
        clock.t += 0.01
        pacer.drain()
    assert pacer.waiting == 0
    clock.t += 0.45  # the bound's worth of the rate later, the debt is paid
    assert pacer.admit(200)


async def test_packets_left_waiting_get_a_pacer_again_at_the_next_tick() -> None:
    """If the pacer task ended with packets waiting (an error in a send), nothing woke it
    again: the queue only wakes it when it goes from empty to one (found in review)."""
    import asyncio

    from kernel.taskset import TaskSet
    from media.adaptation import Adaptation

    tasks = TaskSet("test")
    adaptation = Adaptation(tasks=tasks, now_ms=lambda: 0)
    try:
        link = adaptation.link("pc", "subscriber", None)
        link.estimator.capacity_bps = 100_000  # (the tick keeps pacing)
        link.pacer.set_capacity(100_000)
        link.pacer._wake = lambda: None  # as if the task had died after the wake
        sent: list[int] = []
        link.pacer.admit(1200)
        link.pacer.hold(lambda: sent.append(1), 1200)
        await asyncio.sleep(0.05)
        assert not sent
        adaptation.tick()
        for _ in range(50):
            if sent:
                break
            await asyncio.sleep(0.01)
        assert sent == [1]
    finally:
        await tasks.aclose()
