"""The seam between the SFU session logic and whatever moves media between peers.

``media.sfu`` decides *who* receives *what* and drives negotiation; a
``Forwarder`` decides *how* a publication's media reaches a subscriber's
``RTCRtpSender``. The first implementation (``media.relay``) uses aiortc's
MediaRelay, which decodes and re-encodes; a forwarder that moves encoded media
without transcoding plugs in behind the same interface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

Kind = Literal["audio", "video"]

#: PCM handed to audio consumers (captions): signed 16-bit little endian, mono.
TAP_SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Publication:
    """One track a participant sends to the server."""

    participant_id: str
    kind: Kind
    track: MediaStreamTrack
    receiver: RTCRtpReceiver

    @property
    def id(self) -> str:
        return f"{self.participant_id}/{self.kind}"


class AudioTap(Protocol):
    """A consumer of one publication's audio as 16 kHz mono s16le PCM chunks.

    Tapping must never slow down or alter what subscribers receive.
    """

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Forwarder(Protocol):
    """Moves publications to subscribers' senders. Owned by one room."""

    def prepare_peer(self, pc: RTCPeerConnection) -> None:
        """Called once for every new peer connection, before any negotiation."""

    def publish(self, publication: Publication) -> None:
        """A participant's track became available."""

    def unpublish(self, publication_id: str) -> None:
        """The publisher left; detach every sender carrying it and release it."""

    def attach(self, publication_id: str, sender: RTCRtpSender) -> None:
        """Make ``sender`` carry the publication (replacing what it carried)."""

    def detach(self, sender: RTCRtpSender) -> None:
        """Stop feeding ``sender``; it stays negotiated but idle."""

    def audio_tap(self, publication_id: str) -> AudioTap:
        """A new PCM consumer of an audio publication."""

    async def aclose(self) -> None:
        """Release every publication, subscription and task."""
