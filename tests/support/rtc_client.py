"""A participant as a program: socket.io signaling plus a real aiortc peer connection.

It follows PROTOCOL.md exactly as the browser does (server offers, client answers,
tracks mapped to participants by mid), so integration tests exercise the real
wire protocol and the real media path on loopback.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import socketio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)
from av import VideoFrame

from signaling.protocol import (
    Joined,
    Offer,
    ProtocolError,
    ServerMessage,
    Welcome,
    parse_server_message,
)


class SmallVideoTrack(VideoStreamTrack):
    """A moving 160x120 test pattern at 30 fps: cheap to encode on 2 cores."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self._width, self._height, self._n = width, height, 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._n += 1
        img = np.zeros((self._height, self._width, 3), np.uint8)
        img[:, (self._n * 4) % self._width] = 255
        frame = VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def _session_of(sdp: str) -> str:
    """ICE ufrag and DTLS fingerprint: which server-side peer an offer comes from."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
    fingerprint = re.search(r"a=fingerprint:(\S+ \S+)", sdp)
    return f"{ufrag and ufrag.group(1)}|{fingerprint and fingerprint.group(1)}"


class RtcParticipant:
    """Connects with a join token; records every server message; answers offers."""

    def __init__(
        self,
        base_url: str,
        room_id: str,
        token: str,
        *,
        publish: bool = True,
        answer_filter: Callable[[str], str] | None = None,
        answers: bool = True,
        keep: int | None = None,
    ) -> None:
        self.answer_filter = answer_filter
        #: Keep only about the latest ``keep`` messages (None: all). A client that stays
        #: through hundreds of others' joins would otherwise grow by what it received
        #: (~1 MB per 100 join/leave cycles: more than the leak test allows the server).
        self._keep = keep
        self.answers = answers
        self.base_url, self.room_id, self.token = base_url, room_id, token
        self.sio = socketio.AsyncClient(reconnection=False)
        #: every server message as it came (tests read fields), and as its typed model
        self.messages: list[dict[str, Any]] = []
        self.typed: list[ServerMessage] = []
        #: messages that did not parse as PROTOCOL.md's server messages
        self.protocol_errors: list[str] = []
        self._arrived = asyncio.Condition()
        self.pc: RTCPeerConnection | None = None
        self.publish = publish
        self.local_tracks: list[MediaStreamTrack] = []
        self.mid_owner: dict[str, str] = {}
        self.frames: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.first_frame_at: float | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.you: dict[str, Any] | None = None
        self._session = ""
        self.sio.on("message", self._on_message)

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        await self.sio.connect(
            self.base_url,
            auth={"token": self.token, "room": self.room_id},
            transports=["websocket"],
            socketio_path="/socket.io/",
            wait_timeout=10,
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.sio.emit("message", message)

    async def close(self) -> None:
        """Leave; raises if the server sent anything that is not in the protocol."""
        await self._leave()
        assert not self.protocol_errors, f"server messages off the protocol: {self.protocol_errors}"

    async def _leave(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for track in self.local_tracks:
            track.stop()
        if self.pc is not None:
            await self.pc.close()

    # -------------------------------------------------------------- waiting
    async def wait_for(self, type_: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for m in self.messages:
                if m["type"] == type_ and all(m.get(k) == v for k, v in match.items()):
                    return m
            return None

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(find), timeout)
        found = find()
        assert found is not None
        return found

    def received(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == type_]

    async def wait_frames(
        self, participant_id: str, kind: str, count: int, timeout: float = 15.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.frames[participant_id][kind] < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{kind} from {participant_id}: {self.frames[participant_id][kind]} frames, "
                    f"wanted {count}; got {dict((k, dict(v)) for k, v in self.frames.items())}"
                )
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------- handlers
    async def _on_message(self, data: dict[str, Any]) -> None:
        self.messages.append(data)
        keep = self._keep
        if keep is not None and len(self.messages) > 2 * keep:
            del self.messages[:-keep]
            del self.typed[:-keep]
        try:
            message = parse_server_message(data)
        except ProtocolError as exc:
            self.protocol_errors.append(f"{data.get('type')!r}: {exc}")
        else:
            self.typed.append(message)
            if isinstance(message, Welcome | Joined):
                self.you = data["you"]
            if isinstance(message, Offer) and self.answers:
                await self._answer(message)
        async with self._arrived:
            self._arrived.notify_all()

    async def _answer(self, offer: Offer) -> None:
        if self.pc is not None and _session_of(offer.sdp) != self._session:
            # A new server-side peer (rebuilt after a failure): a new connection, as pages do.
            await self.pc.close()
            self.pc = None
        self._session = _session_of(offer.sdp)
        if self.pc is None:
            # max-bundle: with aiortc's default (balanced) policy, extra video receivers created
            # by setRemoteDescription stay on a transport that BUNDLE discards.
            self.pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            self.pc.on("track", self._on_track)
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        self.mid_owner = {t.mid: t.participant_id for t in offer.tracks}
        if self.publish:
            for kind, mid in offer.publish.items():
                transceiver = next(t for t in pc.getTransceivers() if t.mid == mid)
                if transceiver.sender.track is None:
                    track = self.make_track(kind)
                    self.local_tracks.append(track)
                    transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        sdp = pc.localDescription.sdp
        if self.answer_filter is not None:
            sdp = self.answer_filter(sdp)
        await self.send({"type": "answer", "sdp": sdp})

    def make_track(self, kind: str) -> MediaStreamTrack:
        """The microphone or camera this participant publishes (a subclass may speak)."""
        return SmallVideoTrack() if kind == "video" else AudioStreamTrack()

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._readers.append(asyncio.ensure_future(self._read(transceiver.mid, track)))

    async def _read(self, mid: str | None, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            owner = self.mid_owner.get(mid or "")
            if owner is not None:
                if self.first_frame_at is None and track.kind == "video":
                    self.first_frame_at = time.monotonic()
                self.frames[owner][track.kind] += 1
