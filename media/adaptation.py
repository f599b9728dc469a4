"""Per-subscriber adaptation for one forwarder: estimates, allocations, quality, one task.

``Adaptation`` is owned by an ``RtpForwarder``. It keeps, for every subscriber
connection, a ``SubscriberLink``: the link estimate (``media.bandwidth``), the
allocator (``media.allocation``), the subscriber's video tracks (each with its
``media.layers.LayerSelector``) and audio rate meters. One task (``tick_s``,
default 0.5 s) turns byte counters into bitrates, samples what each transport
has sent, re-allocates, and updates each subscriber's connection quality
(worse at once, better only after ``improve_after_s``). While an allocator
probes with padding (``media.allocation.PaddingProbe``) a second task, the
pacer, sends it every ``pace_s`` through the subscriber's video senders and
stops it at the first sign of trouble; it ends with the last probe. The
per-packet work stays in the forwarder's hot path; nothing here runs per packet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from kernel.media_types import LINK_SEVERITY, LinkQuality, VideoState
from kernel.taskset import TaskSet, raise_if_cancelling
from media.allocation import AllocationConfig, SubscriberAllocator, VideoTrack
from media.bandwidth import BandwidthConfig, LinkEstimator
from media.layers import LayerTracker
from media.pacer import LinkPacer, PacerConfig

logger = logging.getLogger(__name__)
#: One line per subscriber and tick (DEBUG): what the estimate and the allocation were
#: made of. ``SEOULBRIDGE_LOG_LEVEL=INFO,media.linktrace=DEBUG`` turns it on.
trace = logging.getLogger("media.linktrace")

__all__ = ["Adaptation", "AdaptationConfig", "RateMeter", "SubscriberLink"]

#: The transport's running totals (bytes, packets) sent.
SentCounters = Callable[[], tuple[int, int]]
#: One of the subscriber's streams: (SSRC, payload octets, packets) sent so far.
StreamCounters = Callable[[], tuple[int, int, int]]
#: Sends about this many bytes of padding to the subscriber; returns the bytes sent.
Padder = Callable[[int], int]


@dataclass(frozen=True)
class AdaptationConfig:
    #: Off: every subscriber gets the best encoding and all layers (no estimate is used).
    enabled: bool = True
    tick_s: float = 0.5
    #: Probes are padding first (``media.allocation.PaddingProbe``). Off in one round
    #: (the namespace test's unconstrained counselor stayed on the low encoding while
    #: its probes failed on CPU-stall REMB dips); on since such dips no longer back off
    #: (6 of 6 namespace runs, 2026-12-02).
    padding_probes: bool = True
    #: How often the pacer sends a probe's padding, and the most it sends at once
    #: (seconds of it: a loop that was late sends no burst).
    pace_s: float = 0.01
    pace_burst_s: float = 0.03
    #: Video to a subscriber whose link has a known capacity is paced (``media.pacer``):
    #: a keyframe's burst into a limited link's queue was lost, voices among it.
    pacing: bool = True
    pacer: PacerConfig = field(default_factory=PacerConfig)
    #: A connection shown weak or poor is shown better only after this long.
    improve_after_s: float = 3.0
    #: Smoothed loss above which a connection is weak, and poor.
    weak_loss: float = 0.05
    poor_loss: float = 0.15
    bandwidth: BandwidthConfig = field(default_factory=BandwidthConfig)
    allocation: AllocationConfig = field(default_factory=AllocationConfig)


class RateMeter:
    """Bytes of one audio publication, as bit/s (the forwarder adds; the tick reads)."""

    __slots__ = ("bytes", "rate_bps")

    def __init__(self) -> None:
        self.bytes = 0
        self.rate_bps = 0.0

    def refresh(self, dt: float) -> None:
        if dt > 0:
            self.rate_bps += min(1.0, dt / 1.5) * (self.bytes * 8 / dt - self.rate_bps)
        self.bytes = 0


class SubscriberLink:
    """One subscriber connection: its estimate, its allocation and its quality."""

    def __init__(
        self,
        name: str,
        config: AdaptationConfig,
        clock: Callable[[], float],
        counters: SentCounters | None,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._config = config
        self._clock = clock
        self._counters = counters
        #: Every sender of this subscriber sends through it (``OutboundRtp.pacer``).
        self.pacer = LinkPacer(config.pacer, wake=wake, clock=clock)
        self.estimator = LinkEstimator(config.bandwidth, clock)
        self.allocator = SubscriberAllocator(name, config.allocation, clock)
        self.videos: dict[Hashable, VideoTrack] = {}
        self.audios: dict[Hashable, RateMeter] = {}
        #: Per sender, its own counters (a REMB is compared with the streams it covers).
        self.streams: dict[Hashable, StreamCounters] = {}
        #: Per video sender, what sends padding through it (probes).
        self.padders: dict[Hashable, Padder] = {}
        self.quality = LinkQuality.GOOD
        self._better_since: float | None = None
        self._traced_at: float | None = None

    def tick(self) -> None:
        if self._counters is not None:
            streams = {}
            for counters in self.streams.values():
                ssrc, octets, packets = counters()
                streams[ssrc] = (octets, packets)
            self.estimator.sample(*self._counters(), streams)
        if self._config.enabled:
            audio = sum(meter.rate_bps for meter in self.audios.values())
            self.allocator.can_pad = self._config.padding_probes and bool(self.padders)
            self.allocator.allocate(self.estimator, list(self.videos.values()), audio)
            if self._config.pacing:
                self.pacer.set_capacity(self.estimator.capacity_bps, self.allocator.need_bps)
        self._update_quality()
        if trace.isEnabledFor(logging.DEBUG):
            self._trace()

    @property
    def padding(self) -> bool:
        """Whether a padding probe is under way."""
        probe = self.allocator.probe
        return probe is not None and probe.failed is None

    def pace(self, now: float) -> bool:
        """Send what a padding probe owes now; False once there is nothing more to send."""
        probe = self.allocator.probe
        if probe is None or not self.allocator.watch(probe, self.estimator, now):
            return False  # over, or failed: the next tick says which
        owed = probe.due(now, self._config.pace_burst_s)
        if owed <= 0 or self.pacer.waiting:
            return True  # (media waiting for the link: no padding on top of it)
        for padder in self.padders.values():
            sent = padder(owed)
            if sent:
                probe.sent(sent)
                break
        return True

    def pace_and_judge(self, now: float) -> bool:
        """``pace``, and a tick as soon as a probe is over or failed: it is judged (a
        camera steps up, or the next try is timed) then, not up to a tick later (a
        camera resumed 4.4 s after a 300 kbit/s limit was lifted, 0.2 s of it waiting
        for the tick after a probe that had gone through)."""
        probing = self.allocator.probe is not None
        going = self.pace(now)
        if probing and not going and self.allocator.probe is not None:
            self.tick()
        return going

    def _trace(self) -> None:
        e = self.estimator

        def kbps(bps: float | None) -> str:
            return "-" if bps is None else f"{bps / 1000:.0f}"

        now = self._clock()
        dt = max(now - self._traced_at, 1e-3) if self._traced_at is not None else None
        self._traced_at = now
        parts = []
        for key, track in self.videos.items():
            part = track.state.value[0]
            if track.option is not None:
                part += f"@{track.option.bps / 1000:.0f}"
            counters = self.streams.get(key)
            if counters is not None:  # what was sent on it (the rung is what it should be)
                part += f">{e.stream_bps(counters()[0]) / 1000:.0f}"
            frames = track.selector.frames
            if dt is not None:
                part += f"/{(frames - track.traced_frames) / dt:.0f}fps"
            track.traced_frames = frames
            parts.append(part)
        videos = " ".join(parts)
        trace.debug(
            "%s: estimate %s (delay %s, loss cap %s) remb %s sent %s media %s need %s capacity %s "
            "loss %.1f%% congestions %d videos %s paced %s (held %d, late %d, waited <= %.0f ms) "
            "padding feedback %d (%d arrivals, %d lost)",
            self.name,
            kbps(e.estimate_bps),
            kbps(e.delay_bps),
            kbps(e.loss_cap_bps),
            kbps(e.remb_bps),
            kbps(e.sent_bps),
            kbps(e.media_bps),
            kbps(self.allocator.need_bps),
            kbps(e.capacity_bps),
            e.loss * 100,
            e.congestions,
            videos,
            kbps(self.pacer.rate_bps),
            self.pacer.held,
            self.pacer.overdue,
            self.pacer.waited_max_s * 1000,
            e.queue_delay.messages,
            len(e.queue_delay.samples),
            e.queue_delay.lost,
        )

    def measured_quality(self) -> LinkQuality:
        """This tick's quality, before hysteresis."""
        states = {track.state for track in self.videos.values()}
        loss = self.estimator.loss
        if VideoState.PAUSED in states or loss > self._config.poor_loss:
            return LinkQuality.POOR
        if VideoState.REDUCED in states or loss > self._config.weak_loss:
            return LinkQuality.WEAK
        return LinkQuality.GOOD

    def _update_quality(self) -> None:
        now = self._clock()
        measured = self.measured_quality()
        if LINK_SEVERITY[measured] >= LINK_SEVERITY[self.quality]:
            self._better_since = None
            if measured is not self.quality:
                logger.info("%s: connection %s -> %s", self.name, self.quality, measured)
                self.quality = measured
            return
        if self._better_since is None:
            self._better_since = now
        elif now - self._better_since >= self._config.improve_after_s:
            logger.info("%s: connection %s -> %s", self.name, self.quality, measured)
            self.quality = measured
            self._better_since = None


class Adaptation:
    """Every subscriber link of one forwarder, and the task that re-allocates them."""

    def __init__(
        self,
        config: AdaptationConfig | None = None,
        *,
        tasks: TaskSet,
        now_ms: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or AdaptationConfig()
        self._tasks = tasks
        self._now_ms = now_ms
        self._clock = clock
        self._links: dict[Hashable, SubscriberLink] = {}
        self._owner: dict[Hashable, Hashable] = {}  # sender -> its link's key
        self._trackers: list[LayerTracker] = []
        self._meters: list[RateMeter] = []
        self._task: asyncio.Task[None] | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._last_tick: float | None = None
        self.ticks = 0

    # -- registry ----------------------------------------------------------------------
    def link(self, key: Hashable, name: str, counters: SentCounters | None) -> SubscriberLink:
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = SubscriberLink(
                name, self.config, self._clock, counters, wake=self._start_pacer
            )
            self._start()
        return link

    def get(self, key: Hashable) -> SubscriberLink | None:
        return self._links.get(key)

    def forget(self, key: Hashable) -> None:
        link = self._links.pop(key, None)
        if link is not None:
            link.pacer.clear()
            for sender in [*link.videos, *link.audios, *link.streams, *link.padders]:
                self._owner.pop(sender, None)

    def add_video(self, key: Hashable, sender: Hashable, track: VideoTrack) -> None:
        self.remove(sender)
        self._links[key].videos[sender] = track
        self._owner[sender] = key

    def add_audio(self, key: Hashable, sender: Hashable, meter: RateMeter) -> None:
        self.remove(sender)
        self._links[key].audios[sender] = meter
        self._owner[sender] = key

    def remove(self, sender: Hashable) -> None:
        key = self._owner.pop(sender, None)
        link = self._links.get(key) if key is not None else None
        if link is not None:
            link.videos.pop(sender, None)
            link.audios.pop(sender, None)
            link.streams.pop(sender, None)
            link.padders.pop(sender, None)

    def link_of(self, sender: Hashable) -> SubscriberLink | None:
        """The link a sender sends on."""
        key = self._owner.get(sender)
        return self._links.get(key) if key is not None else None

    def video_track(self, sender: Hashable) -> VideoTrack | None:
        link = self.link_of(sender)
        return link.videos.get(sender) if link is not None else None

    def watch(self, source: LayerTracker | RateMeter) -> None:
        if isinstance(source, LayerTracker):
            self._trackers.append(source)
        else:
            self._meters.append(source)

    def unwatch(self, source: LayerTracker | RateMeter) -> None:
        for kept in (self._trackers, self._meters):
            if source in kept:
                kept.remove(source)  # type: ignore[arg-type]

    # -- the tick ----------------------------------------------------------------------
    def tick(self) -> None:
        """Refresh every rate, then re-allocate every subscriber (also called by tests)."""
        now = self._clock()
        dt = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        now_ms = self._now_ms()
        for tracker in self._trackers:
            tracker.refresh(now_ms)
        for meter in self._meters:
            meter.refresh(dt)
        for link in list(self._links.values()):
            try:
                link.tick()
            except Exception:
                logger.exception("%s: adaptation failed", link.name)
        self.ticks += 1
        if self._pacer is None and any(
            link.padding or link.pacer.waiting for link in self._links.values()
        ):
            self._start_pacer()  # (also if an error ended it with packets waiting)

    def _start(self) -> None:
        if self._task is None and not self._tasks.closed:
            self._task = self._tasks.spawn(self._run(), name="adaptation")

    def _start_pacer(self) -> None:
        if self._pacer is not None or self._tasks.closed:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a test ticking by hand paces by hand (SubscriberLink.pace)
        self._pacer = self._tasks.spawn(self._pace(), name="adaptation pacer")

    async def _pace(self) -> None:
        """Every ``pace_s``: the video waiting in the links' pacers, and padding for the
        probes under way; until none of either is left."""
        try:
            while True:
                await asyncio.sleep(self.config.pace_s)
                raise_if_cancelling()
                now = self._clock()
                going = False
                for link in list(self._links.values()):
                    try:
                        going = link.pacer.drain() or going
                        going = link.pace_and_judge(now) or going
                    except Exception:
                        logger.exception("%s: pacing failed", link.name)
                if not going:
                    return
        finally:
            self._pacer = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            raise_if_cancelling()
            self.tick()
