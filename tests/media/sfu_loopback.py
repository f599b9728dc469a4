"""Real aiortc peers on loopback around a forwarder: publisher -> server -> subscribers.

Not a fixture module: tests import these helpers (``import sfu_loopback``).
"""

from __future__ import annotations

import asyncio
import fractions
import math
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamTrack, VideoStreamTrack

from media.forwarding import Forwarder, Kind, Publication

__all__ = ["Publication", "Room", "SineAudio", "SyntheticVideo", "connect", "new_pc"]


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class SyntheticVideo(VideoStreamTrack):
    """A moving gradient, encoded by aiortc's sender (so PLIs are honoured)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._width = width
        self._height = height
        self._n = 0
        y = np.arange(height, dtype=np.uint16)[:, None]
        x = np.arange(width, dtype=np.uint16)[None, :]
        self._base = (x + y).astype(np.uint8)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._n += 1
        plane = self._base + np.uint8((self._n * 3) % 256)
        rgb = np.stack([plane, np.roll(plane, self._n, axis=1), 255 - plane], axis=2)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class SineAudio(MediaStreamTrack):
    """A 440 Hz tone at 48 kHz, 20 ms frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        rate = 48_000
        n = int(AUDIO_PTIME * rate)
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            wait = self._start + self._samples / rate - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(n) + self._samples) / rate
        pcm = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, rate)
        self._samples += n
        return frame


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


@dataclass
class Room:
    """A server that publishes every incoming track into ``forwarder``."""

    forwarder: Forwarder
    pcs: list[RTCPeerConnection] = field(default_factory=list)
    publications: dict[str, Publication] = field(default_factory=dict)
    published: asyncio.Event = field(default_factory=asyncio.Event)

    async def add_publisher(
        self, participant_id: str, *tracks: MediaStreamTrack
    ) -> RTCPeerConnection:
        """The client offers its tracks; the server answers and publishes them."""
        client, server = new_pc(), new_pc()
        self.pcs += [client, server]
        self.forwarder.prepare_peer(server)

        @server.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in server.getTransceivers():
                if transceiver.receiver.track is track:
                    kind: Kind = "video" if track.kind == "video" else "audio"
                    publication = Publication(participant_id, kind, track, transceiver.receiver)
                    self.forwarder.publish(publication)
                    self.publications[publication.id] = publication
                    self.published.set()

        for track in tracks:
            client.addTrack(track)
        await connect(client, server)
        return client

    async def add_subscriber(
        self, publication_ids: list[str], *, attach_first: bool = False
    ) -> tuple[RTCPeerConnection, list[MediaStreamTrack], list[RTCRtpSender]]:
        """The server offers one sendonly transceiver per publication, then attaches."""
        client, server = new_pc(), new_pc()
        self.pcs += [client, server]
        self.forwarder.prepare_peer(server)
        senders: list[RTCRtpSender] = []
        for publication_id in publication_ids:
            kind = self.publications[publication_id].kind
            transceiver: RTCRtpTransceiver = server.addTransceiver(kind, direction="sendonly")
            senders.append(transceiver.sender)
        tracks: list[MediaStreamTrack] = []
        client.on("track", tracks.append)
        if attach_first:  # as media.sfu does: attach, then negotiate
            for publication_id, sender in zip(publication_ids, senders, strict=True):
                self.forwarder.attach(publication_id, sender)
        await connect(server, client)
        if not attach_first:
            for publication_id, sender in zip(publication_ids, senders, strict=True):
                self.forwarder.attach(publication_id, sender)
        return client, tracks, senders

    async def aclose(self) -> None:
        await self.forwarder.aclose()
        for pc in self.pcs:
            await pc.close()


async def first_frame_within(track: MediaStreamTrack, seconds: float) -> av.VideoFrame:
    frame = await asyncio.wait_for(track.recv(), seconds)
    assert isinstance(frame, av.VideoFrame)
    return frame
