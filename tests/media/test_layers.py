"""Per-subscriber layer selection: temporal layers dropped, encodings switched at keyframes,
and one continuous stream (sequence numbers, timestamps, picture ids, TL0PICIDX) either way."""

from __future__ import annotations

import itertools

from media.layers import ALL_TEMPORAL, LayerSelector, LayerTracker, SeqMap
from media.rtp_header import RtpView
from media.vp8 import parse_vp8
from tests.media.vp8_packets import Vp8Stream


class Numbering:
    def __init__(self) -> None:
        self.last_seq: int | None = None
        self.last_ts: int | None = None
        self.last_time = 0.0


class Harness:
    """A tracker and one selector, forwarding as the forwarder does (numbering updated)."""

    def __init__(self) -> None:
        self.tracker = LayerTracker(lambda: "VP8")
        self.numbering = Numbering()
        self.keyframes_asked: list[int | None] = []
        self.selector = LayerSelector(
            self.tracker, self.numbering, 90_000, self.keyframes_asked.append
        )
        self.out: list[tuple[RtpView, int, int]] = []
        self.now = 0.0

    def feed(self, packets: list[RtpView]) -> None:
        for packet in packets:
            self.now += 0.01
            self.tracker.observe(packet, int(self.now * 1000))
            admitted = self.selector.admit(packet, self.now)
            if admitted is not None:
                self.out.append(admitted)
                _, seq, ts = admitted
                self.numbering.last_seq, self.numbering.last_ts = seq, ts
                self.numbering.last_time = self.now

    def frames(self, stream: Vp8Stream, n: int, **kw: object) -> None:
        for _ in range(n):
            self.feed(stream.next_frame(**kw))  # type: ignore[arg-type]

    def assert_continuous(self) -> None:
        seqs = [seq for _, seq, _ in self.out]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
        pids = []
        for view, _, _ in self.out:
            d = parse_vp8(view.payload)
            assert d is not None
            if d.start:
                pids.append(d.picture_id)
        assert all((b - a) & 0x7FFF == 1 for a, b in itertools.pairwise(pids)), pids
        stamps = [ts for _, _, ts in self.out]
        assert all(0 <= (b - a) & 0xFFFFFFFF < 1 << 31 for a, b in itertools.pairwise(stamps))


def test_seqmap_closes_gaps_of_dropped_inputs_and_keeps_late_ones_in_place() -> None:
    m = SeqMap(16)
    m.start(100, 5000)
    assert m.forward(100) == 5000
    m.drop(101)
    assert m.forward(102) == 5001
    assert m.forward(104) == 5003  # 103 is missing: its number stays free for it
    assert m.forward(103) == 5002  # late (a retransmission) takes its own place
    assert m.forward(101) is None  # a late copy of a dropped input stays dropped
    assert m.forward(105) == 5004


def test_seqmap_wraps_around() -> None:
    m = SeqMap(16)
    m.start(0xFFFE, 0xFFFF)
    assert [m.forward(n) for n in (0xFFFE, 0xFFFF, 0, 1)] == [0xFFFF, 0, 1, 2]


def test_all_layers_pass_unchanged_in_count() -> None:
    h = Harness()
    stream = Vp8Stream(ssrc=1)
    h.frames(stream, 1, keyframe=True)
    h.frames(stream, 11)
    assert len(h.out) == len(stream.sent)
    h.assert_continuous()


def test_dropping_upper_temporal_layers_leaves_one_continuous_stream() -> None:
    h = Harness()
    stream = Vp8Stream(ssrc=1)
    h.frames(stream, 1, keyframe=True)
    h.frames(stream, 3)
    h.selector.set_target(1, 0)  # base layer only: a quarter of the frames
    before = len(h.out)
    h.frames(stream, 16)
    taken = h.out[before:]
    tids = {parse_vp8(v.payload).tid for v, _, _ in taken}  # type: ignore[union-attr]
    assert tids == {0}
    assert len(taken) == 4 * stream.packets_per_frame
    h.assert_continuous()
    # Back up: at the next layer-sync frame, the upper layers come back.
    h.frames(stream, 1)  # the next frames are T2 (sync), T1 (sync), T2 (not sync)
    h.frames(stream, 2)
    h.selector.set_target(1, ALL_TEMPORAL)  # first offered: the T2 frame that is not sync
    before = len(h.out)
    h.frames(stream, 8)
    descriptors = [parse_vp8(v.payload) for v, _, _ in h.out[before:]]
    assert {d.tid for d in descriptors if d} == {0, 1, 2}
    first_upper = next(d for d in descriptors if d and d.tid > 0)
    assert first_upper.sync  # an upper layer resumes only where it is decodable
    h.assert_continuous()


def test_encoding_switch_waits_for_its_keyframe_and_asks_for_it() -> None:
    h = Harness()
    low = Vp8Stream(ssrc=11, width=320, height=240, seq=40_000, ts=7, picture_id=9000, tl0=200)
    high = Vp8Stream(ssrc=22, width=640, height=480, seq=65_000, ts=4_000_000_000)
    h.frames(high, 1, keyframe=True)
    h.frames(low, 1, keyframe=True)
    h.tracker.refresh(0)
    h.tracker.refresh(int(h.now * 1000))
    assert [e.ssrc for e in h.tracker.layers] == [11, 22]
    h.selector.set_target(22)
    h.frames(high, 4)
    h.frames(low, 4)  # not forwarded: another encoding
    assert {v.ssrc for v, _, _ in h.out} == {22}
    h.keyframes_asked.clear()
    h.selector.set_target(11)
    assert h.keyframes_asked == [11]
    count = len(h.out)
    h.frames(high, 2)  # the old encoding still flows until the new one's keyframe
    h.frames(low, 2)  # interframes of the new one: not a place to switch
    assert len(h.out) == count + 2 * high.packets_per_frame
    h.frames(low, 1, keyframe=True)
    h.frames(low, 3)
    h.frames(high, 2)  # the old encoding is now dropped
    assert h.selector.current_ssrc == 11 and h.selector.switches == 2
    assert [v.ssrc for v, _, _ in h.out[-8:]] == [11] * 8
    h.assert_continuous()


def test_packets_of_the_other_encodings_ask_for_no_keyframe() -> None:
    """A subscriber on one encoding sees every packet of the others go by: they are not
    its business. (Asking for a keyframe of its own on each of them had the publisher's
    browser send a keyframe of every encoding twice a second, the rate limit.)"""
    h = Harness()
    low = Vp8Stream(ssrc=11, width=320, height=240)
    high = Vp8Stream(ssrc=22, width=640, height=480)
    h.frames(low, 1, keyframe=True)
    h.frames(high, 1, keyframe=True)
    h.tracker.refresh(0)
    h.tracker.refresh(int(h.now * 1000))
    h.selector.set_target(11)
    h.frames(low, 1, keyframe=True)
    assert h.selector.current_ssrc == 11
    h.keyframes_asked.clear()
    h.out.clear()
    for _ in range(20):
        h.frames(low, 1)
        h.frames(high, 1)
    assert h.keyframes_asked == []
    assert {v.ssrc for v, _, _ in h.out} == {11}


def test_pause_forwards_nothing_and_resumes_at_a_keyframe() -> None:
    h = Harness()
    stream = Vp8Stream(ssrc=5)
    h.frames(stream, 1, keyframe=True)
    h.frames(stream, 3)
    h.selector.pause()
    count = len(h.out)
    h.frames(stream, 8)
    assert len(h.out) == count
    h.keyframes_asked.clear()
    h.selector.set_target(5)
    assert h.keyframes_asked  # resuming asks for a keyframe
    h.frames(stream, 2)
    assert len(h.out) == count  # not before it
    h.frames(stream, 1, keyframe=True)
    assert len(h.out) == count + stream.packets_per_frame
    h.assert_continuous()


def test_padding_leaves_no_gap() -> None:
    h = Harness()
    stream = Vp8Stream(ssrc=5)
    h.frames(stream, 1, keyframe=True)
    pad = RtpView(96, 0, stream.seq, stream.ts, 5, b"", padding_size=200)
    stream.seq += 1
    h.selector.skip(pad)
    h.frames(stream, 3)
    h.assert_continuous()


def test_tracker_measures_each_layer_and_orders_encodings_by_size() -> None:
    t = LayerTracker(lambda: "VP8")
    low = Vp8Stream(ssrc=1, width=320, height=240)
    high = Vp8Stream(ssrc=2, width=1280, height=720)
    t.refresh(0)
    now = 0
    for i in range(40):  # 40 frames at 20 ms: 0.8 s
        now += 20
        for p in low.next_frame(keyframe=i == 0, size=100):
            t.observe(p, now)
        for p in high.next_frame(keyframe=i == 0, size=400):
            t.observe(p, now)
    t.refresh(now)
    assert [e.ssrc for e in t.layers] == [1, 2]
    high_e = t.encoding(2)
    assert high_e is not None and high_e.temporal == 3
    # Cumulative per temporal layer: T0 < T0+T1 < all, and the high encoding costs more.
    assert 0 < high_e.rate(0) < high_e.rate(1) < high_e.rate(2)
    assert high_e.rate(ALL_TEMPORAL) > t.encoding(1).rate(ALL_TEMPORAL) > 0  # type: ignore[union-attr]
    # An encoding that stops is no longer offered.
    for _ in range(5):
        now += 1000
        for p in high.next_frame(size=400):
            t.observe(p, now)
        t.refresh(now)
    assert [e.ssrc for e in t.layers] == [2]


def test_a_restart_before_anything_went_out_keeps_the_publishers_numbering() -> None:
    h = Harness()
    stream = Vp8Stream(ssrc=5, picture_id=700)
    first = stream.next_frame(keyframe=True)
    h.tracker.observe(first[0], 0)
    assert h.selector.admit(first[0], 0.0) is not None
    h.selector.restart()  # the subscriber's sender had not started: that packet never left
    h.frames(stream, 1, keyframe=True)
    views = [v for v, _, _ in h.out]
    d = parse_vp8(views[0].payload)
    assert d is not None and d.picture_id == 701  # as sent, not renumbered after the lost one
    assert views[0].payload == stream.sent[2].payload
