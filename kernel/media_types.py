"""Value types at the seam between signaling and the SFU (no aiortc, no I/O).

``media.sfu`` produces them, ``signaling`` consumes them, and neither imports the
other: the composition root (``web.media_rooms``) joins the two.
"""

from __future__ import annotations

from dataclasses import dataclass
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
