"""What one subscriber's link can take, from what its browser already reports.

A subscriber's browser sends, every ~200 ms, a REMB (its receive-side,
delay-based estimate of the whole connection: libwebrtc's
``RemoteBitrateEstimatorAbsSendTime``) and receiver reports (loss per stream,
RTT through our sender reports). ``LinkEstimator`` turns them into one number,
the rate the server may send to this subscriber, as mediasoup's ``RembClient``
and LiveKit's ``StreamAllocator`` do with REMB:

* **no limit until one is seen.** A browser's first REMBs are its start-up
  estimate (~300 kbit/s, rising ~8 %/s up to 1.5x what it receives), not a
  measurement of the link: taken as the estimate, every camera would be cut
  for the first seconds of every call. Until the first congestion (or loss
  cut) there is no estimate and every subscriber gets the best layer.
* **down, fast.** A REMB that falls while we send close to it is the browser's
  overuse detector seeing queues grow: the estimate drops to it at once and
  a *congestion* is recorded. Loss above 6 % over the last reports cuts the
  estimate to what got through (the media sent times ``1 - loss``) less 8 %,
  at most once a second (the reports after a cut still count packets sent
  before it): libwebrtc's loss-based rule (10 %, ``1 - loss/2``) is made for a
  sender that protects its own media; here the same queue carries other
  people's voices, which must not be the ones lost. A REMB that falls only
  because we send less (it is capped near 1.5x what it receives) is not
  congestion.
* **up, from evidence.** A REMB above the estimate raises its delay-based
  part; so does a rate that was sent for ``verify_s`` with no congestion and
  little loss. The loss-based part grows 8 %/s while loss stays under 2 %.
  The estimate is the lower of the two: a full tail-drop queue holds the delay
  constant, so the REMB climbs again while packets are still dropped. The
  loss-based part never grows past 1.5x what is being sent (a paused camera
  sends nothing that could show the link got better) and, once set, never
  lapses: on a rate-limited link a browser's REMB wanders far above what the
  link takes (we measured 1.2 Mbit/s REMBs on a 500 kbit/s link).
* **a failed probe is not a worse link.** When the allocator goes back from
  a step up that congested to the rate that went through before it
  (``settle``), the estimate is held at that rate, and the reports of the
  next moments (they count packets of the probe) neither cut it nor count in
  the smoothed loss.

Everything is driven by calls (REMB, reports, periodic ``sample`` of the bytes
sent); the clock is injectable; no task, no I/O.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from media.rtp_header import WIRE_OVERHEAD
from media.transport_cc import QueueDelay

__all__ = ["BandwidthConfig", "LinkEstimator"]

#: Bytes per sent packet the transport counters do not include: UDP and IPv4 headers.
_UDP_IP_OVERHEAD: Final = 28
#: A REMB older than this no longer counts (its receiver stopped sending them).
_REMB_FRESH_S: Final = 3.0


@dataclass(frozen=True)
class BandwidthConfig:
    #: A REMB below this share of the previous one is a decrease.
    remb_decrease: float = 0.95
    #: ... and congestion when it is below this multiple of what we send.
    remb_congested_vs_sent: float = 1.1
    #: Smoothed loss above which the estimate is cut, and below which the link is clean.
    loss_high: float = 0.06
    loss_clean: float = 0.02
    #: A sending rate held this long with no congestion and clean loss counts as available.
    verify_s: float = 2.0
    #: Seconds of little loss after which the loss-based figure grows faster.
    loss_cap_clean_s: float = 3.0
    #: At most one loss cut per this long: the reports after a cut still count packets
    #: sent before it (cutting again on them cuts twice for one congestion).
    loss_cut_interval_s: float = 1.0
    #: A loss cut sends this share of what got through.
    loss_margin: float = 0.92
    #: Weight of each new receiver report in the smoothed loss.
    loss_weight: float = 0.3
    #: The loss-based figure grows to at most this multiple of what is being sent.
    loss_cap_vs_sent: float = 1.5
    #: Congestions this close together are one overflow: what the link took is the
    #: lowest of their estimates. The loss cut is sized by what was sent over the last
    #: second (before the step down) and the REMB climbs back at once, dipping again on
    #: the way: at 300 kbit/s the REMB fell to 257 kbit/s, then 412 and 495 became the
    #: capacity, and direct steps up to 364 kbit/s lost packets for seconds.
    episode_s: float = 2.0


class LinkEstimator:
    """The estimate for one subscriber's connection (all its streams share the link)."""

    def __init__(
        self, config: BandwidthConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config or BandwidthConfig()
        self._clock = clock
        #: From REMB (delay-based); None (no limit) until the first congestion.
        self._delay_bps: float | None = None
        #: From loss (libwebrtc's loss-based rule); None while loss was never high.
        self.loss_cap_bps: float | None = None
        self._loss_clean_s = 0.0
        self.remb_bps: int | None = None
        #: Smoothed fraction of packets lost (receiver reports).
        self.loss = 0.0
        self.rtt_s: float | None = None
        #: Bit/s sent to this subscriber (everything on its transport), smoothed.
        self.sent_bps = 0.0
        #: The estimate right after the last congestion with loss (or the REMB's just
        #: before it, if lower: ``episode_s``): what the link took then.
        self.capacity_bps: float | None = None
        #: The estimate right after the last congestion of any kind (a REMB that fell
        #: alone included), or what a probe proved since: steps past it are probes.
        self.congested_bps: float | None = None
        #: When the last congestion was seen (monotonic seconds), and how many.
        self.congested_at: float | None = None
        #: When the last congestion with loss was seen.
        self.confirmed_at: float | None = None
        self.congestions = 0
        self._loss_cut_at: float | None = None
        self._sample: tuple[float, int, int] | None = None
        self._stream_sample: dict[int, tuple[int, int]] = {}
        #: Bit/s sent per SSRC (payload and per-packet overhead), smoothed.
        self._stream_bps: dict[int, float] = {}
        #: The latest REMB per set of SSRCs it covers, with when it came.
        self._rembs: dict[frozenset[int], tuple[int, float]] = {}
        self._clean_since: float | None = None
        #: Probe padding's arrivals (transport-wide feedback): the queue a probe builds.
        self.queue_delay = QueueDelay()
        self._clean_min_bps = 0.0
        #: After a failed probe: until when reports describe the probe (``settle``).
        self._settle_until: float | None = None
        #: Packets the subscriber asked for again (NACKs), counted as they come: the
        #: quickest sign that a padding probe overfilled the link.
        self.nacks = 0
        #: Report blocks seen, and the latest ones (count, fraction lost):
        #: a padding probe is judged by the reports that came while it ran, not by the
        #: smoothed loss, which remembers a limit lifted seconds ago.
        self.reports = 0
        self._recent_reports: deque[tuple[int, float]] = deque(maxlen=32)

    # -- inputs ------------------------------------------------------------------------
    def on_remb(self, bitrate: int, ssrcs: tuple[int, ...] = ()) -> None:
        """A REMB of the subscriber covering ``ssrcs`` (empty: the whole connection).

        A browser sends one REMB for every stream it receives; other receivers
        (aiortc's) send one per stream. Each covered set keeps its latest
        value; the link's figure is their sum plus what we send on streams no
        fresh REMB covers. A set's REMB is compared with what we send *on it*.
        """
        now = self._clock()
        key = frozenset(ssrcs)
        previous = self._rembs.get(key)
        self._rembs[key] = (bitrate, now)
        total = self._remb_total(now)
        self.remb_bps = int(total)
        c = self._config
        covered = self._covered_bps(key)
        if self._settling(now):
            return  # the probe's queue, which is draining: not news about the link
        if (
            previous is not None
            and bitrate < previous[0] * c.remb_decrease
            and bitrate < covered * c.remb_congested_vs_sent
        ):
            delay = self._delay_bps
            self._delay_bps = total if delay is None else min(delay, total)
            self._congestion(now, confirmed=False)
        elif self._delay_bps is not None and total > self._delay_bps:
            self._delay_bps = total

    def _covered_bps(self, key: frozenset[int]) -> float:
        """What we send on the streams of one REMB (the whole link when unknown)."""
        rates = self._stream_bps
        if not key or not rates or not key & rates.keys():
            return self.sent_bps
        return sum(rates.get(ssrc, 0.0) for ssrc in key)

    def _remb_total(self, now: float) -> float:
        fresh = {k: v for k, v in self._rembs.items() if now - v[1] <= _REMB_FRESH_S}
        self._rembs = fresh
        covered: set[int] = set()
        total = 0.0
        for key, (bitrate, _) in fresh.items():
            if not key:
                return float(bitrate)  # covers everything
            covered |= key
            total += bitrate
        return total + sum(r for ssrc, r in self._stream_bps.items() if ssrc not in covered)

    def on_report(self, fraction_lost: float, rtt_s: float | None = None) -> None:
        """One receiver-report block for one of our streams (``fraction_lost`` in 0..1)."""
        now = self._clock()
        c = self._config
        if rtt_s is not None:
            self.rtt_s = rtt_s
        self.reports += 1
        self._recent_reports.append((self.reports, fraction_lost))
        if self._settling(now):
            return
        if self._settle_until is not None:
            self._settle_until = None
            self.loss = fraction_lost  # the first report about packets sent after the probe
        else:
            self.loss += c.loss_weight * (fraction_lost - self.loss)
        # A report that itself shows little loss cuts nothing (the smoothed figure
        # still remembers the last congestion for a few reports).
        if self.loss > c.loss_high and fraction_lost > c.loss_high and self.sent_bps > 0:
            if self._loss_cut_at is None or now - self._loss_cut_at >= c.loss_cut_interval_s:
                self._loss_cut_at = now
                # What got through, less a margin: the queue must drain for audio. Of the
                # media we chose to send (the streams' own counters): retransmissions
                # asked for on a full link inflate the transport's total (1.5-2 Mbit/s
                # measured into 500 kbit/s), and a cut sized by them cuts nothing.
                media = self.media_bps
                sent = min(self.sent_bps, media) if media > 0 else self.sent_bps
                # The loss of this report if it is the lower: the smoothed figure still
                # remembers the overflow before the last cut (at 300 kbit/s a cut a second
                # after the first, on the memory of 40 %, took the estimate to 152 kbit/s
                # and paused both cameras for 5 s).
                cut = sent * (1 - min(self.loss, fraction_lost)) * c.loss_margin
                cap = self.loss_cap_bps
                self.loss_cap_bps = cut if cap is None else min(cap, cut)
                self._congestion(now, confirmed=True)

    def sample(
        self,
        sent_bytes: int,
        sent_packets: int,
        streams: Mapping[int, tuple[int, int]] | None = None,
    ) -> None:
        """Running totals sent (a few times a second): the transport's bytes and packets,
        and per SSRC of our streams (payload octets, packets)."""
        now = self._clock()
        last = self._sample
        self._sample = (now, sent_bytes, sent_packets)
        last_streams, self._stream_sample = self._stream_sample, dict(streams or {})
        if last is None or now <= last[0]:
            return
        dt = now - last[0]
        alpha = min(1.0, dt / 1.0)
        bits = ((sent_bytes - last[1]) + (sent_packets - last[2]) * _UDP_IP_OVERHEAD) * 8
        self.sent_bps += alpha * (max(0.0, bits / dt) - self.sent_bps)
        rates: dict[int, float] = {}
        for ssrc, (octets, packets) in self._stream_sample.items():
            before = last_streams.get(ssrc)
            if before is None:
                continue
            bits = ((octets - before[0]) + (packets - before[1]) * WIRE_OVERHEAD) * 8
            old = self._stream_bps.get(ssrc, 0.0)
            rates[ssrc] = old + alpha * (max(0.0, bits / dt) - old)
        self._stream_bps = rates
        self._grow_loss_cap(dt)
        self._verify(now)

    def _grow_loss_cap(self, dt: float) -> None:
        """With little loss the loss-based figure grows 8 %/s (libwebrtc), 25 %/s after
        ``loss_cap_clean_s`` of it, up to ``loss_cap_vs_sent`` times what is sent."""
        cap = self.loss_cap_bps
        if cap is None or self.loss >= self._config.loss_clean:
            self._loss_clean_s = 0.0
            return
        self._loss_clean_s += dt
        # Faster once clean for a while (a link that recovered): 8 %/s, then 25 %/s.
        growth = 1.25 if self._loss_clean_s >= self._config.loss_cap_clean_s else 1.08
        bound = self._config.loss_cap_vs_sent * self.sent_bps
        if cap < bound:
            self.loss_cap_bps = min(cap * growth**dt, bound)

    def lossy_since(self, reports: int) -> bool:
        """Whether a report block after the ``reports``-th lost more than a clean link."""
        clean = self._config.loss_clean
        return any(f >= clean for n, f in self._recent_reports if n > reports)

    def on_nack(self, lost: int) -> None:
        """The subscriber asked for ``lost`` packets again (any of our streams)."""
        self.nacks += lost

    def settle(self, committed_bps: float, for_s: float) -> None:
        """A step up congested and the sender went back to ``committed_bps``, which went
        through cleanly before it: hold the estimate there, and take the reports of the
        next ``for_s`` (about the probe's packets) as no news."""
        self._settle_until = self._clock() + for_s
        self._at_least(committed_bps)

    def proven(self, bps: float) -> None:
        """``bps`` went through: a padding probe carried that total with no loss, no NACK
        and no REMB decrease (the browser's REMB follows only slowly)."""
        self._at_least(bps)

    def _at_least(self, bps: float) -> None:
        delay, cap = self._delay_bps, self.loss_cap_bps
        if delay is not None and delay < bps:
            self._delay_bps = bps
        if cap is not None and cap < bps:
            self.loss_cap_bps = bps
        if self.capacity_bps is not None and self.capacity_bps < bps:
            self.capacity_bps = bps
        if self.congested_bps is not None and self.congested_bps < bps:
            self.congested_bps = bps

    def _settling(self, now: float) -> bool:
        return self._settle_until is not None and now < self._settle_until

    # -- state -------------------------------------------------------------------------
    @property
    def media_bps(self) -> float:
        """Bit/s of the media streams sent (their own counters, with per-packet overhead):
        ``sent_bps`` less retransmissions, padding and RTCP."""
        return sum(self._stream_bps.values())

    def stream_bps(self, ssrc: int) -> float:
        """Bit/s sent on one of our streams (0 when unknown)."""
        return self._stream_bps.get(ssrc, 0.0)

    @property
    def delay_bps(self) -> float | None:
        """The delay-based part (from REMB and verified rates); None before a congestion."""
        return self._delay_bps

    @property
    def estimate_bps(self) -> float | None:
        """Bit/s the server may send: the lower of the delay- and loss-based figures.

        A full tail-drop queue (a rate-limited link) keeps the delay constant,
        so the browser's REMB climbs again while packets are dropped: only the
        loss-based figure holds the rate down there.
        """
        delay, loss = self._delay_bps, self.loss_cap_bps
        if delay is None:
            return loss
        return delay if loss is None else min(delay, loss)

    def congested_since(self, when: float | None) -> bool:
        return self.congested_at is not None and (when is None or self.congested_at > when)

    def since_congestion(self) -> float:
        """Seconds since the last congestion (infinite if never)."""
        if self.congested_at is None:
            return float("inf")
        return self._clock() - self.congested_at

    @property
    def clean(self) -> bool:
        return self.loss < self._config.loss_clean

    def _congestion(self, now: float, *, confirmed: bool) -> None:
        """A congestion; ``confirmed`` when packets were lost (the link itself is full):
        only then is the rate a capacity to stay under. A REMB drop alone may be the
        browser's overuse detector seeing its own CPU stall."""
        # The lowest estimate of one overflow: congestions this close together are one.
        took = self.estimate_bps
        earlier, at = self.congested_bps, self.congested_at
        if earlier is not None and at is not None and now - at <= self._config.episode_s:
            took = earlier if took is None else min(took, earlier)
        if confirmed:
            self.capacity_bps = took
            self.confirmed_at = now
        self.congested_bps = took
        self.congested_at = now
        self.congestions += 1
        self._clean_since = None

    def _verify(self, now: float) -> None:
        """A rate that went through cleanly for ``verify_s`` is available (raises the estimate)."""
        if not self.clean or self.since_congestion() < self._config.verify_s:
            self._clean_since = None
            return
        if self._clean_since is None:
            self._clean_since = now
            self._clean_min_bps = self.sent_bps
            return
        self._clean_min_bps = min(self._clean_min_bps, self.sent_bps)
        if now - self._clean_since >= self._config.verify_s:
            held = self._clean_min_bps
            if self._delay_bps is not None and held > self._delay_bps:
                self._delay_bps = held
            self._clean_since = now
            self._clean_min_bps = self.sent_bps
