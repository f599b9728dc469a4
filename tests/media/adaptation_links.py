"""Subscriber links under test for the adaptation tests: a clock, simulcast cameras
measured at given rates, a link with two of them, the congestions and settled states
the tests start from, and a padder that records what a probe asked it to send."""

from __future__ import annotations

from kernel.media_types import VideoState
from media.adaptation import AdaptationConfig, RateMeter, SubscriberLink
from media.layers import LayerSelector, LayerTracker
from media.video_ladder import VideoTrack
from tests.media.test_layers import Numbering
from tests.media.vp8_packets import Vp8Stream


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def camera(
    low_kbps: float = 150, high_kbps: float = 600, fps: int = 40
) -> tuple[LayerTracker, LayerSelector]:
    """A simulcast camera (320x240 and 640x480, L1T3) measured at the given rates."""
    tracker = LayerTracker(lambda: "VP8")
    t_ms = 0
    tracker.refresh(t_ms)
    streams = [Vp8Stream(ssrc=1, width=320, height=240), Vp8Stream(ssrc=2)]
    kbps = [low_kbps, high_kbps]
    for second in range(7):  # let the smoothed rates settle at the true ones
        for i in range(fps):
            for stream, rate in zip(streams, kbps, strict=True):
                size = int(rate * 1000 / 8 / fps / stream.packets_per_frame) - 50
                first = second == 0 and i == 0
                for p in stream.next_frame(keyframe=first, size=max(size, 20)):
                    tracker.observe(p, t_ms + i * 1000 // fps)
        t_ms += 1000
        tracker.refresh(t_ms)
    selector = LayerSelector(tracker, Numbering(), 90_000, lambda ssrc: None)
    return tracker, selector


def make_link(clock: Clock, cameras: int = 2) -> tuple[SubscriberLink, list[VideoTrack]]:
    link = SubscriberLink("resident", AdaptationConfig(padding_probes=True), clock, counters=None)
    tracks = []
    for n in range(cameras):
        tracker, selector = camera()
        track = VideoTrack(f"camera {n}", selector, tracker)
        link.videos[n] = track
        tracks.append(track)
    meter = RateMeter()
    meter.rate_bps = 40_000
    link.audios["audio"] = meter
    return link, tracks


def all_in_full(link: SubscriberLink, clock: Clock, *, sending: int) -> None:
    """A good link, every camera in full; half a second later we send ``sending`` bit/s."""
    link.estimator.on_remb(3_000_000)
    link.tick()
    link.estimator.sent_bps = sending
    clock.t += 0.5


def remb_stays(link: SubscriberLink, clock: Clock, remb: int, seconds: float) -> None:
    """The browser's REMB says ``remb`` for ``seconds`` (no loss), ticking meanwhile."""
    link.estimator.on_remb(remb)
    link.tick()
    for _ in range(int(seconds / 0.5)):
        clock.t += 0.5
        link.estimator.on_remb(remb)
        link.tick()


def congest(link: SubscriberLink, remb: int) -> None:
    """The link is full: the REMB falls and packets are lost (then no more)."""
    link.estimator.on_remb(remb)
    link.estimator.on_report(0.3)
    for _ in range(12):
        link.estimator.on_report(0.0)


def paused_camera(clock: Clock) -> tuple[SubscriberLink, list[VideoTrack]]:
    """One camera paused by a congested link; now only the voice is sent (45 kbit/s)."""
    link, tracks = make_link(clock, cameras=1)
    all_in_full(link, clock, sending=1_000_000)
    congest(link, 50_000)
    link.tick()
    assert tracks[0].state is VideoState.PAUSED
    link.estimator.sent_bps = 45_000
    return link, tracks


def settled_on_low_rungs(clock: Clock) -> tuple[SubscriberLink, list[VideoTrack]]:
    """Two cameras on a 500 kbit/s link: after a congestion both on the low encoding's
    top rung, which went through cleanly for a while."""
    link, tracks = make_link(clock)
    all_in_full(link, clock, sending=1_400_000)
    congest(link, 500_000)
    link.tick()
    assert [t.index for t in tracks] == [2, 2]  # both on the low encoding, all its layers
    link.estimator.sent_bps = link.allocator.need_bps
    return link, tracks


class Padder:
    """Stands in for a subscriber's video sender: what the pacer asked it to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, int]] = []
        self.clock: Clock | None = None

    def __call__(self, nbytes: int) -> int:
        assert self.clock is not None
        self.sent.append((self.clock.t, nbytes))
        return nbytes

    def between(self, start: float, end: float) -> int:
        return sum(n for t, n in self.sent if start <= t < end)


def padding_probe_started(clock: Clock) -> tuple[SubscriberLink, list[VideoTrack], Padder]:
    """Two cameras settled on their low rungs, a padder: ticks until a probe pads."""
    link, tracks = settled_on_low_rungs(clock)
    padder = Padder()
    padder.clock = clock
    link.padders["camera 0"] = padder
    for _ in range(20):
        clock.t += 0.5
        link.tick()
        if link.allocator.probe is not None:
            break
    assert link.allocator.probe is not None, "no padding probe"
    return link, tracks, padder


def pace(link: SubscriberLink, clock: Clock, seconds: float) -> None:
    """The pacer for ``seconds`` (every 10 ms), then a tick."""
    for _ in range(round(seconds / 0.01)):
        clock.t += 0.01
        link.pace(clock.t)
    link.tick()
