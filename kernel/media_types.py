"""Value types at the seam between signaling and the SFU (no aiortc, no I/O).

``media.sfu`` produces them, ``signaling`` consumes them, and neither imports the
other: the composition root (``web.media_rooms``) joins the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Kind = Literal["audio", "video"]
KINDS: tuple[Kind, ...] = ("audio", "video")


@dataclass(frozen=True)
class PublicationRef:
    """One track a participant sends to the server, by name only."""

    participant_id: str
    kind: Kind

    @property
    def id(self) -> str:
        return f"{self.participant_id}/{self.kind}"


@dataclass(frozen=True)
class TrackAssignment:
    """Which participant's media a server-side transceiver (by ``mid``) carries."""

    mid: str
    participant_id: str
    kind: Kind


@dataclass(frozen=True)
class OfferToSend:
    """What signaling must deliver to one participant as an ``offer`` message."""

    sdp: str
    publish: dict[Kind, str]
    tracks: tuple[TrackAssignment, ...]


class LinkQuality(StrEnum):
    """How a participant's connection is doing, as the call page shows it."""

    GOOD = "good"
    WEAK = "weak"
    POOR = "poor"


#: Worse is larger: how a page's quality is compared and combined.
LINK_SEVERITY: dict[LinkQuality, int] = {
    LinkQuality.GOOD: 0,
    LinkQuality.WEAK: 1,
    LinkQuality.POOR: 2,
}


class VideoState(StrEnum):
    """What one subscriber receives of one camera: all of it, a reduced layer, or nothing."""

    FULL = "full"
    REDUCED = "reduced"
    PAUSED = "paused"


@dataclass(frozen=True)
class RemoteQuality:
    """Another participant as one subscriber sees them."""

    participant_id: str
    #: That participant's own connection (their sending and their receiving).
    link: LinkQuality
    #: What the server forwards of their camera to this subscriber; None: no camera.
    video: VideoState | None


@dataclass(frozen=True)
class LinkReport:
    """What one participant's page is told about connection quality."""

    you: LinkQuality
    participants: tuple[RemoteQuality, ...]


@dataclass(frozen=True)
class LinkStats:
    """One participant's connection as the server measures it (metrics, support)."""

    participant_id: str
    quality: LinkQuality
    #: The server's estimate of what this participant can receive (None: no limit seen).
    estimate_bps: float | None
    #: What their browser last reported it can receive (REMB), None before the first.
    remb_bps: int | None
    sent_bps: float
    loss: float
    rtt_s: float | None
    videos: dict[str, VideoState]
