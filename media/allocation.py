"""Which layer of each video a subscriber gets, so that its audio always gets through.

Once per tick (``media.adaptation``) a subscriber's estimate
(``media.bandwidth.LinkEstimator``) is shared out as LiveKit's
``StreamAllocator`` does: audio first, whatever it measures; then every video
gets a place on its *ladder* — the lowest encoding's temporal layers
(6 → 12 → 24 fps), then each higher encoding at full frame rate — or is paused.

* **Down** at once when packets are lost (or, when the browser's REMB alone
  says so, after it has said so for ``remb_patience_s``: a CPU stall dips it
  too, on links that are fine): the video on the
  highest rung steps down first, until the total fits 90 % of the estimate;
  when every video is on its lowest rung the last one (in subscription order)
  is paused, then the next.
* **Up** one rung per tick, the lowest video first, no sooner than
  ``hold_s`` after a congestion, and only if the new total fits 85 % of the
  estimate (the 15 % band is the hysteresis that keeps a REMB sawtooth from
  flapping layers) and, until the probe wait has passed, 90 % of what the link
  took at the last congestion with loss: a browser's REMB climbs to 1.5x what
  it receives whether or not the link got better (we measured 700 kbit/s REMBs
  on a 500 kbit/s link), so beyond that only a probe tells (resuming a paused
  video included); with padding, a step past that total is always a probe,
  whenever it comes (at 300 kbit/s the estimate crept to 536 kbit/s while the
  wait ran, and the direct step it allowed lost 10 %). Because Chrome's
  REMB recovers slowly once it has dropped, a step *beyond* the estimate is
  also allowed — a probe — when the
  link has been clean for ``probe_wait`` and the step is at most
  ``probe_ratio`` times what is being sent; if congestion follows within
  ``probe_blame_s`` that total (and that step, however its bit/s wobble) becomes a
  ceiling for a while and the wait
  doubles (4 s up to 20 s), like LiveKit's probe back-off.
* **A failed step up goes back, not further down.** The congestion that
  follows a step up is that step's: every video returns to where it was
  before it (a total that went through cleanly — LiveKit's committed
  allocation), and the estimate is held there while the probe's queue drains
  (``LinkEstimator.settle``). Cutting from the loss the probe caused paused a
  camera for 5–20 s at 500 kbit/s in the benchmark.
* **A probe is padding first, where the subscriber can take it.** Switching
  into the unknown costs the new encoding's keyframe (20-30 kB at once into a
  queue of 12 kB on a 500 kbit/s link: lost packets, voices among them) and,
  when it fails, a keyframe of the encoding gone back to. With a padder (RTX
  negotiated), a probe sends padding instead — ramped over ``pad_ramp_s`` up
  to the step's extra bit/s and at least the new total / headroom, held
  (``pad_strength``) — and switches only if that went through: no REMB below
  what the media needs, fewer than ``pad_nacks`` packets asked for again, no
  loss reported (LiveKit's prober; libwebrtc's probe padding) and, where the
  browser sends transport-wide feedback about the padding
  (``media.transport_cc``), a one-way delay that did not grow by ``pad_queue_s``:
  that fails a probe while the link's queue fills, before a rate-limited link
  drops anything, so probes to resume a camera start stronger there
  (``pad_level_seen``). A
  congestion while a probe pads is the probe's, not the step before it. A failed padding
  probe moves no video; the padding stops at once (the pacer in
  ``media.adaptation`` watches the NACKs between ticks). A probe that went
  through and whose step congested anyway was too weak for that link's queue:
  the next ones are stronger (a higher total, held longer) until the link has
  been clean for a while.
* **A paused video is probed for often.** Resuming one (its lowest rung) is
  tried every ``resume_wait_s`` at most (``pad_resume_wait_s`` with padding),
  whatever the back-off: the link's recovery shows nowhere else, and a camera
  should come back within seconds of it. A padding probe to resume tries every
  paused video at once, and one if that total failed lately.

A video's state is ``full`` (top of its ladder: the best the publisher sends),
``reduced`` or ``paused``, with the transitions of ``VIDEO_TRANSITIONS``
enforced. The selector does the switching at keyframes; this module only
decides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kernel.media_types import VideoState
from media.bandwidth import LinkEstimator
from media.padding_probe import PaddingProbe
from media.video_ladder import (
    MIN_FPS,
    VIDEO_TRANSITIONS,
    IllegalVideoTransition,
    Option,
    VideoTrack,
    ladder,
    rung_for,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_FPS",
    "VIDEO_TRANSITIONS",
    "AllocationConfig",
    "IllegalVideoTransition",
    "Option",
    "PaddingProbe",
    "SubscriberAllocator",
    "VideoState",
    "VideoTrack",
    "ladder",
    "rung_for",
]


@dataclass(frozen=True)
class AllocationConfig:
    headroom: float = 0.85
    drain: float = 0.9
    hold_s: float = 2.0
    probe_wait_s: float = 4.0
    #: The longest wait between probes.
    probe_wait_max_s: float = 20.0
    #: The longest wait before resuming a paused video is tried (a probe: REMB alone
    #: cannot tell that the link recovered).
    resume_wait_s: float = 3.0
    #: A padding probe tries the step's extra bit/s times this (an encoder's rate moves,
    #: and the switch starts with a keyframe): measured at 500 kbit/s, a probe of the
    #: measured extra went through and the switch it allowed lost 29 % of its packets.
    pad_overshoot: float = 1.25
    #: It ramps up over this long, then holds the tried total (``pad_strength``: long
    #: enough to fill a rate-limited link's queue), and is judged ``pad_grace_s`` after
    #: (the reports and NACKs about its last packets)...
    pad_ramp_s: float = 0.6
    #: A padding probe that went through and whose step then congested within the blame
    #: period did not fill the link's queue (at 300 kbit/s, 8 % over the link for 1.2 s
    #: fits its 7.5 kB queue): each such miss makes the next probes stronger, up to the
    #: last of these (the new total / headroom, and the hold), until the link has been
    #: clean for ``stable_s``. The longest still resumes a camera within 5 s: a 2 s wait,
    #: the ramp, a 1.2 s hold, the grace (with 1.8 s a camera resumed 6.2 s after a
    #: 300 kbit/s limit was lifted).
    pad_strength: tuple[tuple[float, float], ...] = ((0.85, 0.6), (0.75, 0.9), (0.7, 1.2))
    #: Where the padding's queue delay is seen (transport-wide feedback), probes to
    #: *resume* a paused camera start at this strength: one that fails stops before
    #: anything is lost, and a weaker one cannot tell 5 % over a rate-limited link from
    #: fitting (its token bucket hides it): at 300 kbit/s a probe to 314 kbit/s went
    #: through for a resume to 267 kbit/s, which lost packets three seconds later, every
    #: time. Steps up keep the usual strength: at 500 kbit/s the stronger probe (538
    #: kbit/s for a step to 403, which that link carries well) failed twice in a row and
    #: kept a camera at 10 fps for 28 s.
    pad_level_seen: int = 1
    pad_grace_s: float = 0.3
    #: With padding, resuming a paused video is tried this often (a failed padding
    #: probe costs a few packets, not a keyframe each way): 3 s between tries and 2 s
    #: per probe resumed cameras 6.2 s after a 300 kbit/s limit was lifted.
    pad_resume_wait_s: float = 2.0
    #: After a step a padding probe proved, the next probe may start this soon.
    pad_after_step_s: float = 1.0
    #: ... failing at this many packets asked for again (a few: links lose some), or at
    #: loss in the reports that came this long after it started or later (a report is
    #: about the second before it: one at once failed the probe that resumed a camera
    #: after a 300 kbit/s limit was lifted, on the limit's own losses, 5 s lost).
    pad_nacks: int = 4
    pad_reports_after_s: float = 0.5
    #: ... from this long in where the queue is seen (the queue fails such a probe
    #: first; a report 0.5-1 s in still spoke of packets lost before it, and failed the
    #: probe that would have resumed a camera just after a 300 kbit/s limit was lifted).
    pad_reports_after_seen_s: float = 1.0
    #: ... or, where the browser sends transport-wide feedback about the padding
    #: (``media.transport_cc``), at once when the padding's one-way delay grew this much
    #: (the link's queue is filling: a rate-limited link drops only once it is full,
    #: at 300 kbit/s a second of packets after the probe started) or this many padding
    #: packets were reported missing.
    pad_queue_s: float = 0.05
    pad_lost: int = 2
    #: After a probe to resume that failed on its padding alone, the next comes this soon.
    pad_queue_retry_s: float = 1.0
    probe_ratio: float = 2.5
    probe_blame_s: float = 4.0
    #: After going back from a failed step up, how long the loss reports are the probe's.
    settle_s: float = 1.5
    #: ... and after a padding probe that failed on NACKs or loss: the link's queue then
    #: drains behind the resends it asked for, and the report 2 s after such a probe
    #: (at 500 kbit/s, about packets sent after it) cut the estimate to 190 kbit/s and
    #: paused both cameras, 5 % of the resident's audio concealed in that window.
    pad_settle_s: float = 2.5
    #: A REMB below what is sent, with no loss, steps down only after this long, and
    #: pauses a camera only after ``pause_after_s`` (with loss: both at once).
    remb_patience_s: float = 1.0
    pause_after_s: float = 2.0
    stable_s: float = 20.0
    #: After a congestion, steps up stay within this share of what the link took then
    #: until the probe wait has passed (a browser's REMB climbs past a limited link's
    #: rate, to 1.5x what it receives, and following it means congesting again)...
    capacity_share: float = 0.9


class SubscriberAllocator:
    """The allocation of one subscriber, with its probing back-off."""

    def __init__(
        self,
        name: str,
        config: AllocationConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._config = config or AllocationConfig()
        self._clock = clock
        self._seen_congestion: float | None = None
        #: One padding probe may come ``hold_s`` after a congestion that ended a clean
        #: spell of ``stable_s`` (the probe wait is for links that keep congesting).
        self._quick_probe = False
        self._upgrade_at: float | None = None
        self._upgrade_need = 0.0
        self._probe_wait = self._config.probe_wait_s
        self._probed_at: float | None = None
        self._ceiling: float | None = None
        self._ceiling_until = 0.0
        #: The places (by video name: a rung, or -1 paused) of the step the ceiling is
        #: from: that step, or one above it, stays blocked however its bit/s wobble.
        self._ceiling_places: dict[str, Option | int] = {}
        #: Before the last step up: its total and every video's rung (None: no ladder,
        #: -1: paused), to go back to if it congests; and whether it resumed a video.
        self._before_upgrade: tuple[float, list[Option | int | None]] | None = None
        #: Since when the lowest rungs did not fit an estimate from REMB alone.
        self._short_since: float | None = None
        self._upgrade_resumed = False
        #: Whether the step up under blame was one a padding probe proved, and how strong
        #: padding probes are now (an index into ``pad_strength``).
        self._upgrade_padded = False
        self.pad_level = 0
        #: Whether probes may be padding (someone sends it: ``media.adaptation``).
        self.can_pad = False
        self.probe: PaddingProbe | None = None
        self.padding_probes = 0
        self.padding_probes_failed = 0
        #: Totals (bit/s) of the last allocation, for metrics and the debug panel.
        self.need_bps = 0.0
        self.probes = 0

    def allocate(self, link: LinkEstimator, tracks: list[VideoTrack], audio_bps: float) -> None:
        c = self._config
        now = self._clock()
        ladders = [ladder(track.tracker) for track in tracks]
        pos = [
            track.place(rungs) if rungs else None
            for track, rungs in zip(tracks, ladders, strict=True)
        ]

        def cost(j: int) -> float:
            p = pos[j]
            return 0.0 if p is None or p < 0 else ladders[j][p].bps

        if link.estimate_bps is None:
            pos = [len(rungs) - 1 if rungs else None for rungs in ladders]
        else:
            congested = link.congested_since(self._seen_congestion)
            if congested:
                previous = self._seen_congestion
                # The first congestion after a long clean spell may be a blip (a CPU stall
                # on a free link loses packets too): one probe back comes sooner.
                self._quick_probe = previous is None or now - previous >= c.stable_s
                self._seen_congestion = link.congested_at
                probe = self.probe
                if probe is None or self._upgrade_at is None or probe.started < self._upgrade_at:
                    self._blame(now, link, tracks, pos, ladders)
                # else: a padding probe started after the last step up, and the congestion
                # is its own (its failure holds the estimate at what was sent before it);
                # at 500 kbit/s, blaming the step too sent both cameras back to 10 fps
                # and doubled the wait twice.
            estimate = link.estimate_bps
            assert estimate is not None
            need = audio_bps + sum(cost(j) for j in range(len(tracks)))
            probe = self.probe
            if probe is not None:
                need, moved = self._judge(
                    probe, link, tracks, pos, ladders, need, cost, now, congested
                )
                if self.probe is not None or moved:  # padding goes on, or it went through
                    self.need_bps = need
                    self._apply(tracks, ladders, pos)
                    return
                estimate = link.estimate_bps
                assert estimate is not None
            probed = self._probed_at
            if link.since_congestion() >= c.stable_s:
                self.pad_level = 0
            if link.since_congestion() >= c.stable_s or (
                probed is not None and now - probed > c.probe_blame_s and not congested
            ):
                self._probe_wait = c.probe_wait_s  # stable, or the last probe went through
                self._probed_at = None
            probing = (
                self._upgrade_at is not None
                and now - self._upgrade_at < c.probe_blame_s
                and not congested
            )
            if need <= estimate:
                self._short_since = None
            short = need > estimate and (congested or not probing)
            age = self._shortage(link, now) if short else None
            if short and (age is None or age >= c.remb_patience_s):
                logger.info(
                    "%s: %.0f kbit/s needed, %.0f estimated: stepping down",
                    self._name,
                    need / 1000,
                    estimate / 1000,
                )
                may_pause = age is None or age >= c.pause_after_s
                need = self._step_down(pos, ladders, need, estimate * c.drain, cost, may_pause)
                self._upgrade_at = None
            elif link.since_congestion() >= c.hold_s:
                need = self._step_up(link, tracks, pos, ladders, need, estimate, cost, now)
            self.need_bps = need
        self._apply(tracks, ladders, pos)

    @staticmethod
    def _apply(
        tracks: list[VideoTrack], ladders: list[list[Option]], pos: list[int | None]
    ) -> None:
        for track, rungs, p in zip(tracks, ladders, pos, strict=True):
            if rungs and p is not None:
                track.apply(rungs, p)

    def _blame(
        self,
        now: float,
        link: LinkEstimator,
        tracks: list[VideoTrack],
        pos: list[int | None],
        ladders: list[list[Option]],
    ) -> None:
        """A congestion right after a step up: that total is too much for a while, and
        every video goes back to where it was before it."""
        c = self._config
        before = self._before_upgrade
        if self._upgrade_at is not None and now - self._upgrade_at <= c.probe_blame_s:
            wait = self._wait(resuming=self._upgrade_resumed)
            self._ceiling = self._upgrade_need
            self._ceiling_until = now + wait
            self._ceiling_places = self._places(tracks, pos, ladders)
            logger.info(
                "%s: congestion after stepping up to %.0f kbit/s; back to %s kbit/s, "
                "no probe there for %.0f s",
                self._name,
                self._upgrade_need / 1000,
                "?" if before is None else f"{before[0] / 1000:.0f}",
                wait,
            )
            self._probe_wait = min(self._probe_wait * 2, c.probe_wait_max_s)
            if self._upgrade_padded and self.pad_level < len(c.pad_strength) - 1:
                self.pad_level += 1
                logger.info(
                    "%s: the padding probe before it went through: probes stronger now (%d)",
                    self._name,
                    self.pad_level,
                )
            if before is not None:
                committed, rungs = before
                for j, saved in enumerate(rungs):
                    if pos[j] is None or saved is None or not ladders[j]:
                        continue
                    pos[j] = saved if isinstance(saved, int) else rung_for(ladders[j], saved)
                # Held a little above it: a total wobbles (frame sizes), and stepping down
                # again for a 1 % wobble pauses a camera that went through.
                link.settle(committed / c.drain, c.settle_s)
        self._upgrade_at = None
        self._probed_at = None
        self._before_upgrade = None

    def _start_padding(
        self,
        link: LinkEstimator,
        steps: list[tuple[VideoTrack, Option]],
        resuming: bool,
        need: float,
        new_need: float,
    ) -> None:
        c = self._config
        now = self._clock()
        self.padding_probes += 1
        self._quick_probe = False
        # At least the new total with the step-up headroom on top: a small step padded
        # only by its own extra does not fill a limited link's queue within the probe
        # (263 -> 329 kbit/s "went through" on a 300 kbit/s link, and the step lost
        # packets two seconds later), and what it proves is what the next steps count
        # on (``proven``).
        level = self.pad_level
        if resuming and link.queue_delay.seen:
            level = max(level, c.pad_level_seen)
        headroom, hold = c.pad_strength[min(level, len(c.pad_strength) - 1)]
        target = max(need + (new_need - need) * c.pad_overshoot, new_need / headroom)
        ends = now + c.pad_ramp_s + hold
        self.probe = PaddingProbe(
            steps=steps,
            resuming=resuming,
            base_bps=need,
            target_bps=target,
            step_bps=new_need,
            started=now,
            ends=ends,
            judged_at=ends + c.pad_grace_s,
            ramp_s=c.pad_ramp_s,
            nacks=link.nacks,
        )
        logger.info(
            "%s: padding probe %.0f -> %.0f kbit/s for %s (%.0f kbit/s)",
            self._name,
            need / 1000,
            target / 1000,
            ", ".join(video.name for video, _ in steps),
            new_need / 1000,
        )

    def watch(self, probe: PaddingProbe, link: LinkEstimator, now: float) -> bool:
        """Between ticks (the pacer): whether ``probe`` should go on padding; a REMB
        decrease or NACKs fail it at once."""
        if probe.failed is not None:
            return False
        probe.count_reports_from(now, link.reports, self._reports_after(link))
        c = self._config
        queue = link.queue_delay
        growth = queue.growth_s(probe.started)
        if link.congested_at is not None and link.congested_at > probe.started:
            self._remb_fell(probe, link)
        elif link.nacks - probe.nacks >= c.pad_nacks:
            probe.failed = f"{link.nacks - probe.nacks} packets asked for again"
        elif growth is not None and growth >= c.pad_queue_s:
            probe.failed = f"the queue grew by {growth * 1000:.0f} ms"
            probe.padding_only = True
        elif queue.lost_since(probe.started) >= c.pad_lost:
            probe.failed = f"{queue.lost_since(probe.started)} padding packets lost"
            probe.padding_only = link.nacks == probe.nacks
        return probe.failed is None and now < probe.judged_at

    def _reports_after(self, link: LinkEstimator) -> float:
        """How far into a probe the loss reports start to count against it."""
        c = self._config
        return c.pad_reports_after_seen_s if link.queue_delay.seen else c.pad_reports_after_s

    @staticmethod
    def _remb_fell(probe: PaddingProbe, link: LinkEstimator) -> None:
        remb = link.remb_bps
        lost = link.confirmed_at is not None and link.confirmed_at > probe.started
        if remb is not None and remb >= probe.base_bps and link.nacks == probe.nacks and not lost:
            probe.failed = "the REMB fell, above what the media sends"
            probe.inconclusive = True
        else:
            probe.failed = "the REMB fell below what the media sends"

    def _judge(
        self,
        probe: PaddingProbe,
        link: LinkEstimator,
        tracks: list[VideoTrack],
        pos: list[int | None],
        ladders: list[list[Option]],
        need: float,
        cost: Callable[[int], float],
        now: float,
        congested: bool,
    ) -> tuple[float, bool]:
        """A tick during a padding probe: go on, fail it, or take the step it tried
        (then True: nothing else moves this tick)."""
        c = self._config
        probe.count_reports_from(now, link.reports, self._reports_after(link))
        if probe.reports is not None and link.lossy_since(probe.reports):
            probe.failed = probe.failed or "loss reported"
            probe.inconclusive = False
        elif congested and probe.failed is None:
            self._remb_fell(probe, link)
        else:
            self.watch(probe, link, now)
        if probe.failed is not None:
            self.probe = None
            self.padding_probes_failed += 1
            wait = self._wait(resuming=probe.resuming)
            counted = probe.reports if probe.reports is not None else link.reports
            if probe.padding_only and probe.resuming and not link.lossy_since(counted):
                # It cost no media packet and its queue drains in a fraction of a second:
                # the next try to resume comes sooner (a camera resumed 6.1 s after a
                # 300 kbit/s limit was lifted, waiting 2 s behind such a failure; and
                # 4.4 s behind one that lost two padding packets as the limit went).
                wait = min(wait, c.pad_queue_retry_s)
            self._ceiling = probe.step_bps
            self._ceiling_until = now + wait
            tried = list(pos)
            for j, index in self._steps_at(probe, tracks, pos, ladders):
                tried[j] = index
            self._ceiling_places = self._places(tracks, tried, ladders)
            if not probe.inconclusive:
                self._probe_wait = min(self._probe_wait * 2, c.probe_wait_max_s)
            self._probed_at = None
            # What the padding queued or lost is the probe's, not the link's news.
            link.settle(
                probe.base_bps / c.drain, c.settle_s if probe.inconclusive else c.pad_settle_s
            )
            logger.info(
                "%s: padding probe to %.0f kbit/s for %s failed after %.1f s (%s); "
                "no probe there for %.0f s",
                self._name,
                probe.target_bps / 1000,
                ", ".join(video.name for video, _ in probe.steps),
                now - probe.started,
                probe.failed,
                wait,
            )
            return need, False
        if now < probe.judged_at:
            return need, False
        self.probe = None
        expected = probe.expected_bytes()
        share = min(1.0, probe.padded / expected) if expected > 0 else 1.0
        padded = share >= 0.5
        if not padded:
            logger.info("%s: padding probe could not pad; stepping up as a probe", self._name)
        else:
            # What it carried, not what it meant to: a loop running late sends less (the
            # pacer sends no burst), and at load 13 a probe that padded half its extra
            # "went through" a 300 kbit/s link below it; the step it allowed and the
            # ones its proven total allowed next lost packets for seconds.
            reached = probe.base_bps + (probe.target_bps - probe.base_bps) * share
            if reached < probe.step_bps:
                self.padding_probes_failed += 1
                logger.info(
                    "%s: padding probe to %.0f kbit/s reached %.0f (%.0f %% of its padding "
                    "sent), below the step's %.0f: no step",
                    self._name,
                    probe.target_bps / 1000,
                    reached / 1000,
                    share * 100,
                    probe.step_bps / 1000,
                )
                return need, False
            link.proven(reached)
        before = self._rungs_of(pos, ladders)
        new_need = need
        moved = []
        for j, index in self._steps_at(probe, tracks, pos, ladders):
            p = pos[j]
            assert p is not None
            if index <= p:
                continue
            new_need += ladders[j][index].bps - cost(j)
            pos[j] = index
            moved.append(tracks[j].name)
        if not moved:
            return need, False
        self._before_upgrade = (need, before)
        self._upgrade_resumed = probe.resuming
        self._upgrade_padded = padded
        self._upgrade_at = now
        self._upgrade_need = new_need
        self._probed_at = now
        logger.info(
            "%s: padding probe to %.0f kbit/s went through; %s step up",
            self._name,
            probe.target_bps / 1000,
            ", ".join(moved),
        )
        return new_need, True

    @staticmethod
    def _steps_at(
        probe: PaddingProbe,
        tracks: list[VideoTrack],
        pos: list[int | None],
        ladders: list[list[Option]],
    ) -> list[tuple[int, int]]:
        """Where each of a probe's steps puts its video: (index in ``tracks``, rung on
        its current ladder), for the videos still there with a place and a ladder."""
        return [
            (j, rung_for(ladders[j], rung))
            for video, rung in probe.steps
            if video in tracks and pos[j := tracks.index(video)] is not None and ladders[j]
        ]

    @staticmethod
    def _rungs_of(pos: list[int | None], ladders: list[list[Option]]) -> list[Option | int | None]:
        """Every video's place, to go back to: its rung (None: no ladder, -1: paused)."""
        return [None if q is None else q if q < 0 else ladders[k][q] for k, q in enumerate(pos)]

    @staticmethod
    def _places(
        tracks: list[VideoTrack], pos: list[int | None], ladders: list[list[Option]]
    ) -> dict[str, Option | int]:
        """Every video's place by name: its rung, or -1 paused (none without a ladder)."""
        rungs = SubscriberAllocator._rungs_of(pos, ladders)
        return {
            track.name: rung
            for track, rung, steps in zip(tracks, rungs, ladders, strict=True)
            if rung is not None and steps
        }

    def _blocked(
        self,
        total: float,
        now: float,
        tracks: list[VideoTrack],
        pos: list[int | None],
        ladders: list[list[Option]],
    ) -> bool:
        """Whether a probe to ``total`` (every video at ``pos``) failed lately: a
        ceiling for a while, in bit/s and as the places of the step that failed.

        The places hold however the bit/s wobble: at 300 kbit/s a probe to resume
        failed on its queue, and one of the same step started in the same tick because
        the other camera's rate had dipped 4 % below the failed total; it ran into the
        still-full queue and the camera waited 2 s more. A step with any video lower
        than it was (a camera stepped down since) is the bit/s's to judge."""
        if now >= self._ceiling_until:
            return False
        ceiling = self._ceiling
        if ceiling is not None and total >= ceiling * 0.97:
            return True
        failed = self._ceiling_places
        if not failed:
            return False
        where = {track.name: k for k, track in enumerate(tracks)}
        for name, place in failed.items():
            k = where.get(name)
            q = None if k is None else pos[k]
            if k is None or q is None or not ladders[k]:
                return False
            if q < (place if isinstance(place, int) else rung_for(ladders[k], place)):
                return False
        return True

    def _wait(self, *, resuming: bool) -> float:
        """How long the link must be clean before a probe (shorter to resume a video)."""
        c = self._config
        wait = self._probe_wait
        if not resuming:
            return wait
        return min(wait, c.pad_resume_wait_s if self.can_pad else c.resume_wait_s)

    def _shortage(self, link: LinkEstimator, now: float) -> float | None:
        """How long the estimate has been short from the browser's REMB alone; None when
        loss says the link is full (then the step down is at once, pausing if need be).

        A REMB that dips alone is as often the browser's own CPU stalling (it recovers
        within a second or two; a camera switched down for it needs a keyframe each
        way): nothing moves for ``remb_patience_s``, and no camera is paused for it
        before ``pause_after_s``."""
        c = self._config
        confirmed = link.confirmed_at
        if not link.clean or (confirmed is not None and now - confirmed < c.pause_after_s):
            return None
        if self._short_since is None:
            self._short_since = now
        return now - self._short_since

    @staticmethod
    def _step_down(
        pos: list[int | None],
        ladders: list[list[Option]],
        need: float,
        target: float,
        cost: Callable[[int], float],
        may_pause: bool = True,
    ) -> float:
        floor = -1 if may_pause else 0
        while need > target:
            movable = [j for j, p in enumerate(pos) if p is not None and p > floor]
            if not movable:
                break
            j = max(movable, key=lambda k: (pos[k], k))
            need -= cost(j)
            p = pos[j]
            assert p is not None
            pos[j] = p - 1
            need += cost(j)
        return need

    def _step_up(
        self,
        link: LinkEstimator,
        tracks: list[VideoTrack],
        pos: list[int | None],
        ladders: list[list[Option]],
        need: float,
        estimate: float,
        cost: Callable[[int], float],
        now: float,
    ) -> float:
        c = self._config
        growable = [j for j, p in enumerate(pos) if p is not None and p < len(ladders[j]) - 1]
        if not growable:
            return need
        j = min(growable, key=lambda k: (pos[k], k))
        p = pos[j]
        assert p is not None
        new_need = need - cost(j) + ladders[j][p + 1].bps
        wait = self._wait(resuming=p < 0)
        if self._quick_probe and self.can_pad:
            wait = min(wait, c.hold_s)
        within = new_need <= estimate * c.headroom
        capacity = link.capacity_bps
        # What the link took at its last congestion with loss, or else at its last one
        # from the REMB alone (at 300 kbit/s the REMB then climbed back to 1.5x what was
        # sent, a direct step to 399 kbit/s followed, and lost packets for 3 s).
        took = capacity if capacity is not None else link.congested_bps
        if (
            within
            and took is not None
            and (self.can_pad or link.since_congestion() < wait)
            and new_need > took * c.capacity_share
        ):
            # Past what the link took at its last congestion (or a probe proved): the
            # estimate alone does not tell, since a browser's REMB and the loss-based
            # figure both climb to 1.5x what is sent on a full link. Where padding can
            # try it first, it always does.
            within = False
        if not within:
            # After a step a padding probe proved, the next probe need not wait for the
            # blame period: the step itself was no probe.
            gap = c.pad_after_step_s if self.can_pad else c.probe_blame_s
            # A probe tries at most ``probe_ratio`` times what is sent, or what the link
            # is known to take (a muted peer sends next to nothing: a camera paused there
            # would never be tried again, now that a step past the capacity is a probe).
            bound = c.probe_ratio * max(link.sent_bps, need, capacity or 0.0)
            stepped = list(pos)
            stepped[j] = p + 1
            probe = (
                link.clean
                and not self._blocked(new_need, now, tracks, stepped, ladders)
                and link.since_congestion() >= wait
                and (self._upgrade_at is None or now - self._upgrade_at >= gap)
                and new_need <= bound
            )
            if not probe:
                return need
            self.probes += 1
            self._probed_at = now
            if self.can_pad:
                steps = [(tracks[j], ladders[j][p + 1])]
                if p < 0:  # every paused video at once, unless that total failed lately
                    paused = [k for k, q in enumerate(pos) if q is not None and q < 0]
                    together = need + sum(ladders[k][0].bps for k in paused)
                    resumed = [0 if k in paused else q for k, q in enumerate(pos)]
                    if (
                        len(paused) > 1
                        and not self._blocked(together, now, tracks, resumed, ladders)
                        and together <= bound
                    ):
                        steps = [(tracks[k], ladders[k][0]) for k in paused]
                        new_need = together
                self._start_padding(link, steps, p < 0, need, new_need)
                return need
        self._before_upgrade = (
            need,
            self._rungs_of(pos, ladders),
        )
        self._upgrade_resumed = p < 0
        self._upgrade_padded = False
        pos[j] = p + 1
        self._upgrade_at = now
        self._upgrade_need = new_need
        return new_need
