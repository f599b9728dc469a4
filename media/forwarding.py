"""The seam between the SFU session logic and whatever moves media between peers.

``media.sfu`` decides *who* receives *what* and drives negotiation; a
``Forwarder`` decides *how* a publication's media reaches a subscriber's
``RTCRtpSender``. ``media.rtp_forwarder`` forwards encoded RTP (the default);
``media.relay`` (aiortc's MediaRelay, decode and re-encode) is kept as the
benchmark baseline. Callers (the SFU, recording, captions, bandwidth
adaptation) use only this interface, never a concrete forwarder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from kernel.media_types import Kind, LinkQuality, PublicationRef, VideoState
from media.codecs import RoomCodecs

__all__ = ["Kind"]

#: PCM handed to audio consumers (captions): signed 16-bit little endian, mono.
TAP_SAMPLE_RATE = 16_000

#: Called for every packet of a publication (RTX unwrapped) with its codec name; must not block.
PacketListener = Callable[[RtpPacket, str], None]


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

    @property
    def ref(self) -> PublicationRef:
        return PublicationRef(self.participant_id, self.kind)


class AudioTap(Protocol):
    """A consumer of one publication's audio as 16 kHz mono s16le PCM chunks.

    Tapping must never slow down or alter what subscribers receive.
    """

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class PacketSource(Protocol):
    """Encoded packets of a room's publications, as subscribers get them (recording)."""

    def add_packet_listener(
        self, publication_id: str, listener: PacketListener
    ) -> Callable[[], None]:
        """Call ``listener`` for each packet of the publication; returns the remover.

        Raises ``MediaError`` when the publication is unknown or this forwarder
        does not forward encoded packets.
        """

    def request_keyframe(self, publication_id: str) -> None:
        """Ask a video publication's sender for a keyframe (rate-limited); audio: no-op."""


class Forwarder(PacketSource, Protocol):
    """Moves publications to subscribers' senders. Owned by one room."""

    @property
    def codecs(self) -> RoomCodecs | None:
        """The one codec per kind every peer must negotiate; None when it adapts (transcodes)."""

    def prepare_peer(self, pc: RTCPeerConnection, label: str = "") -> None:
        """Called once for every new peer connection, before any negotiation; ``label``
        names it in logs (the participant)."""

    def release_peer(self, pc: RTCPeerConnection) -> None:
        """The peer connection is closed: forget everything kept for its senders."""

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


@dataclass(frozen=True)
class LinkState:
    """One subscriber connection as the forwarder measures it."""

    quality: LinkQuality
    #: What the server may send to it (bit/s); None: no limit seen (no congestion yet).
    estimate_bps: float | None
    #: The subscriber's own last REMB (bit/s), None before the first.
    remb_bps: int | None
    sent_bps: float
    loss: float
    rtt_s: float | None


@runtime_checkable
class LinkReporter(Protocol):
    """A forwarder that adapts to each subscriber's link can say how it is doing."""

    def link_state(self, pc: RTCPeerConnection) -> LinkState | None:
        """The connection's state, or None when it subscribes to nothing yet."""

    def video_state(self, sender: RTCRtpSender) -> VideoState | None:
        """What the subscriber on ``sender`` gets of its video, or None (no video there)."""

    def uplink_quality(self, publication_id: str) -> LinkQuality | None:
        """How a publisher's sending looks from the server (None: unknown or audio)."""


@runtime_checkable
class OfferShaper(Protocol):
    """A forwarder that changes the offer text a page gets (simulcast)."""

    def shape_offer(self, sdp: str, publish: Mapping[Kind, str]) -> str:
        """The offer to send, given aiortc's and the publish mids by kind."""

    def read_answer(self, pc: RTCPeerConnection, sdp: str) -> None:
        """What the page's answer kept of what ``shape_offer`` added (aiortc ignores it)."""
