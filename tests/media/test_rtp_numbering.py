"""Sequence/timestamp rewriting of one subscription over long runs and re-anchoring."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

from media.rtp_forwarder import _NumberingState, _Subscription
from media.rtp_header import RtpView


class FakeOut:
    """Stands in for OutboundRtp: records what would go on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []

    def negotiated_codec(self) -> Any:
        return SimpleNamespace(name="opus")

    def send(self, packet: RtpView, seq: int, ts: int, abs_send_time: int, ntp: int) -> bool:
        self.sent.append((seq, ts))
        return True


def _source(kind: str = "audio") -> Any:
    return SimpleNamespace(
        publication=SimpleNamespace(kind=kind, id="p/audio"),
        codec_name="opus",
        clock_rate=48_000,
        request_keyframe=lambda: None,
    )


async def test_numbering_survives_wraparound_and_long_streams() -> None:
    out = FakeOut()
    sub = _Subscription(_source(), out, _NumberingState())  # type: ignore[arg-type]
    seq, ts = 65_000, (1 << 32) - 960 * 10
    for _ in range(70_000):  # > 65536 packets: sequence and timestamp both wrap
        sub.forward(RtpView(111, 0, seq, ts, 7, b"x"), 0.0, 0, 0)
        seq = (seq + 1) % 65536
        ts = (ts + 960) % (1 << 32)
    assert len(out.sent) == 70_000
    for (s0, t0), (s1, t1) in itertools.pairwise(out.sent):
        assert (s1 - s0) % 65536 == 1
        assert (t1 - t0) % (1 << 32) == 960


async def test_reanchor_continues_numbering_on_the_same_sender() -> None:
    out = FakeOut()
    state = _NumberingState()
    first = _Subscription(_source(), out, state)  # type: ignore[arg-type]
    for i in range(10):
        first.forward(RtpView(111, 0, 100 + i, 5000 + 960 * i, 1, b"x"), i * 0.02, 0, 0)
    second = _Subscription(_source(), out, state)  # type: ignore[arg-type]
    second.forward(RtpView(111, 0, 40_000, 9, 2, b"x"), 0.5, 0, 0)
    (s0, t0), (s1, t1) = out.sent[9], out.sent[10]
    assert (s1 - s0) % 65536 == 1
    assert 0 < (t1 - t0) % (1 << 32) < 48_000
