"""A video subscription's ladder and state: what the allocation (``media.allocation``)
chooses among, and what it moves.

A publication's *ladder* is its rungs, cheapest first: the lowest encoding's
temporal layers (those of at least ``MIN_FPS``), then each higher encoding at
full frame rate, each at its measured bit/s. A ``VideoTrack`` is one
subscription on it: its rung, or paused, and its state (``full``, ``reduced``,
``paused``, with the transitions of ``VIDEO_TRANSITIONS`` enforced); applying a
rung tells the selector, which switches at keyframes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from kernel.media_types import VideoState
from media.errors import MediaError
from media.layers import ALL_TEMPORAL, LayerSelector, LayerTracker

# The log lines keep their logger: operators and the benchmark read them as allocation's.
logger = logging.getLogger("media.allocation")

__all__ = [
    "MIN_FPS",
    "VIDEO_TRANSITIONS",
    "IllegalVideoTransition",
    "Option",
    "VideoTrack",
    "ladder",
    "rung_for",
]


VIDEO_TRANSITIONS: Final[dict[VideoState, frozenset[VideoState]]] = {
    VideoState.FULL: frozenset({VideoState.REDUCED, VideoState.PAUSED}),
    VideoState.REDUCED: frozenset({VideoState.FULL, VideoState.PAUSED}),
    # A resumed video starts on its lowest rung; FULL directly only when that is the top.
    VideoState.PAUSED: frozenset({VideoState.REDUCED, VideoState.FULL}),
}


class IllegalVideoTransition(MediaError):
    """A video subscription was moved between states the table does not allow."""


#: Frames per second below which a temporal layer is not offered as a rung.
MIN_FPS: Final = 8.0


@dataclass(frozen=True)
class Option:
    """One rung: an encoding and the highest temporal layer, at its measured bit/s."""

    ssrc: int
    temporal: int
    bps: float


def ladder(tracker: LayerTracker, min_fps: float = MIN_FPS) -> list[Option]:
    """The rungs of a publication, cheapest first (empty until an encoding is known).

    Temporal layers of the lowest encoding below ``min_fps`` are left out (a
    video that slow is worse than a paused one with its reason shown), unless
    none reaches it.
    """
    layers = tracker.layers
    if not layers:
        return []
    low = layers[0]
    rungs: list[Option] = []
    if low.temporal > 1:
        top = low.temporal - 1
        rungs += [
            Option(low.ssrc, t, low.rate(t))
            for t in range(low.temporal)
            if t == top or low.frame_rate(t) >= min_fps
        ]
    else:
        rungs.append(Option(low.ssrc, ALL_TEMPORAL, low.rate(ALL_TEMPORAL)))
    for encoding in layers[1:]:
        option = Option(encoding.ssrc, ALL_TEMPORAL, encoding.rate(ALL_TEMPORAL))
        if option.bps > rungs[-1].bps:
            rungs.append(option)
    return rungs


def rung_for(rungs: list[Option], option: Option) -> int:
    """Where ``option`` is on a (possibly changed) ladder: the same layers, or the
    best rung that costs no more."""
    for i, rung in enumerate(rungs):
        if rung.ssrc == option.ssrc and rung.temporal == option.temporal:
            return i
    fitting = [i for i, rung in enumerate(rungs) if rung.bps <= option.bps]
    return fitting[-1] if fitting else 0


class VideoTrack:
    """One video subscription under allocation."""

    def __init__(self, name: str, selector: LayerSelector, tracker: LayerTracker) -> None:
        self.name = name
        self.selector = selector
        self.tracker = tracker
        #: Rung on the current ladder; -1 paused; None before the first allocation.
        self.index: int | None = None
        self.state = VideoState.FULL
        self.option: Option | None = None
        #: The selector's frame count at the last trace line (``media.linktrace``).
        self.traced_frames = 0

    def set_state(self, new: VideoState) -> None:
        if new is self.state:
            return
        if new not in VIDEO_TRANSITIONS[self.state]:
            raise IllegalVideoTransition(
                f"{self.name}: illegal video transition {self.state.value} -> {new.value}"
            )
        logger.info("%s: video %s -> %s", self.name, self.state.value, new.value)
        self.state = new

    def place(self, rungs: list[Option]) -> int:
        """This track's rung on a (possibly changed) ladder."""
        if self.index is None:
            return len(rungs) - 1
        if self.index < 0:
            return -1
        if self.option is not None:
            return rung_for(rungs, self.option)
        return min(self.index, len(rungs) - 1)

    def apply(self, rungs: list[Option], index: int) -> None:
        if index < 0:
            if self.index is None or self.index >= 0:
                self.selector.pause()
            self.set_state(VideoState.PAUSED)
            self.index, self.option = -1, None
            return
        rung = rungs[index]
        selector = self.selector
        if (
            selector.paused
            or selector.target_ssrc != rung.ssrc
            or selector.target_temporal != rung.temporal
        ):
            logger.info(
                "%s: rung %d of %d (ssrc %d T%d, %.0f kbit/s)",
                self.name,
                index + 1,
                len(rungs),
                rung.ssrc,
                rung.temporal,
                rung.bps / 1000,
            )
            selector.set_target(rung.ssrc, rung.temporal)
        self.set_state(VideoState.FULL if index == len(rungs) - 1 else VideoState.REDUCED)
        self.index, self.option = index, rung
