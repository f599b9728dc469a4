"""A padding probe: padding sent on top of what a subscriber gets, to try a total before a
video is switched to it.

``media.allocation`` starts and judges probes; the pacer in ``media.adaptation`` sends
their padding (``due``, ``sent``). This module is the probe's own arithmetic: its ramp,
what it owes the pacer, what it should have padded.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.video_ladder import Option, VideoTrack

__all__ = ["PaddingProbe"]


@dataclass
class PaddingProbe:
    """Padding sent on top of what a subscriber gets, to try a total before a video is
    switched to it (``AllocationConfig.pad_ramp_s``); the pacer sends it, the allocator
    judges it."""

    #: The videos to step up if it goes through, each with its new rung (every paused
    #: video at once when resuming, if that total is not known to fail).
    steps: list[tuple[VideoTrack, Option]]
    resuming: bool
    base_bps: float
    #: The total tried (with ``pad_overshoot``), and the step's own total.
    target_bps: float
    step_bps: float
    started: float
    #: When the padding ends, and when the probe is judged.
    ends: float
    judged_at: float
    ramp_s: float
    #: The estimator's NACK count when it started, and its report count half a second
    #: in (``pad_reports_after_s``; None before): a report is about the second before
    #: it, and one that came at once spoke of a limit lifted just before.
    nacks: int
    reports: int | None = None
    failed: str | None = None
    #: Failed on its own padding alone: its queue delay, or padding packets lost while
    #: no media packet was asked for again (the padding is the tail of the queue; a
    #: limit lifted under a probe dropped the queue's last packets, padding only).
    padding_only: bool = False
    #: A failure from the REMB alone while it still had room for what the media sends
    #: (no NACKs, no loss): a browser whose CPU stalls dips its REMB on a free link too.
    #: The probe stops all the same (the queue drains), but the wait does not double.
    inconclusive: bool = False
    #: Bytes due and not sent yet, bytes sent, and when the pacer last looked.
    owed: float = 0.0
    padded: int = 0
    paced_at: float | None = None

    def count_reports_from(self, now: float, reports: int, after_s: float) -> None:
        """Mark the report count ``after_s`` into the probe (once): the reports after it
        are about the probe's own packets."""
        if self.reports is None and now - self.started >= after_s:
            self.reports = reports

    def rate_bps(self, now: float) -> float:
        """The padding's bit/s now: ramped up to the step's extra bit/s, 0 once over."""
        if self.failed is not None or now >= self.ends:
            return 0.0
        share = min(1.0, max(0.0, now - self.started) / self.ramp_s)
        return (self.target_bps - self.base_bps) * share

    def due(self, now: float, burst_s: float) -> int:
        """Bytes to send now, at most ``burst_s`` of them (a late loop sends no burst)."""
        last = self.started if self.paced_at is None else self.paced_at
        self.paced_at = now
        rate = self.rate_bps(now) / 8
        self.owed = min(self.owed + rate * max(0.0, now - last), rate * burst_s)
        return int(self.owed)

    def sent(self, nbytes: int) -> None:
        self.owed -= nbytes
        self.padded += nbytes

    def expected_bytes(self) -> float:
        """What the whole probe should have padded (the ramp counts half)."""
        extra = (self.target_bps - self.base_bps) / 8
        return extra * (self.ramp_s / 2 + (self.ends - self.started - self.ramp_s))
