"""The baseline forwarder: aiortc's MediaRelay (decodes, and re-encodes per subscriber).

Kept as the reference the encoded forwarder is benchmarked against, and as a
fallback when a room's publishers and subscribers share no codec.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import av
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.codecs import RoomCodecs
from media.errors import MediaError
from media.forwarding import TAP_SAMPLE_RATE, PacketListener, Publication

logger = logging.getLogger(__name__)


class RelayAudioTap:
    """16 kHz mono PCM from a relayed (already decoded) audio track."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self._track = track
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=TAP_SAMPLE_RATE)

    def _convert(self, frame: av.AudioFrame) -> bytes:
        out = bytearray()
        for resampled in self._resampler.resample(frame):
            out += bytes(resampled.planes[0])[: resampled.samples * 2]
        return bytes(out)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            # Resampling is PyAV work: keep it off the event loop thread.
            pcm = await asyncio.to_thread(self._convert, frame)
            if pcm:
                yield pcm

    async def aclose(self) -> None:
        self._track.stop()


class RelayForwarder:
    """Forwarder on top of MediaRelay: one decoded source, one proxy track per sender."""

    def __init__(self) -> None:
        self._relay = MediaRelay()
        self._publications: dict[str, Publication] = {}
        self._attached: dict[RTCRtpSender, tuple[str, MediaStreamTrack]] = {}

    @property
    def codecs(self) -> RoomCodecs | None:
        return None  # it transcodes: whatever each peer negotiated

    def prepare_peer(self, pc: RTCPeerConnection, label: str = "") -> None:
        return None

    def release_peer(self, pc: RTCPeerConnection) -> None:
        for transceiver in pc.getTransceivers():
            self.detach(transceiver.sender)

    def add_packet_listener(
        self, publication_id: str, listener: PacketListener
    ) -> Callable[[], None]:
        raise MediaError(
            "this room relays by transcoding; recording needs encoded forwarding (RtpForwarder)"
        )

    def request_keyframe(self, publication_id: str) -> None:
        return None  # the relay's encoders send keyframes of their own

    def publish(self, publication: Publication) -> None:
        self._publications[publication.id] = publication

    def unpublish(self, publication_id: str) -> None:
        for sender, (attached_id, _) in list(self._attached.items()):
            if attached_id == publication_id:
                self.detach(sender)
        self._publications.pop(publication_id, None)

    def attach(self, publication_id: str, sender: RTCRtpSender) -> None:
        publication = self._publications.get(publication_id)
        if publication is None:
            raise MediaError(f"no publication {publication_id!r} to attach")
        self.detach(sender)
        proxy = self._relay.subscribe(publication.track)
        sender.replaceTrack(proxy)
        self._attached[sender] = (publication_id, proxy)

    def detach(self, sender: RTCRtpSender) -> None:
        entry = self._attached.pop(sender, None)
        if entry is None:
            return
        sender.replaceTrack(None)
        entry[1].stop()

    def audio_tap(self, publication_id: str) -> RelayAudioTap:
        publication = self._publications.get(publication_id)
        if publication is None or publication.kind != "audio":
            raise MediaError(f"no audio publication {publication_id!r} to tap")
        return RelayAudioTap(self._relay.subscribe(publication.track))

    async def aclose(self) -> None:
        for sender in list(self._attached):
            self.detach(sender)
        self._publications.clear()
