"""RTP packets of one track back into encoded frames, for remuxing.

Video packets are grouped by RTP timestamp and a frame is complete at the
marker bit; a frame with a missing packet is dropped and the track waits for
the next keyframe (asking for one), so a file never holds undecodable frames.
Each Opus packet is a frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.keyframes import is_keyframe_start

_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame; ``timestamp`` is the unwrapped RTP timestamp."""

    timestamp: int
    data: bytes
    keyframe: bool


def _codec(name: str, clock_rate: int) -> RTCRtpCodecParameters:
    kind = "audio" if name.lower() == "opus" else "video"
    return RTCRtpCodecParameters(mimeType=f"{kind}/{name}", clockRate=clock_rate)


class FrameAssembler:
    """Feeds on RTP packets of one track (in arrival order), yields whole frames."""

    def __init__(self, codec_name: str, request_keyframe: Callable[[], None]) -> None:
        self.codec_name = codec_name
        self.video = codec_name.lower() != "opus"
        self._codec = _codec(codec_name, 90_000 if self.video else 48_000)
        self._request_keyframe = request_keyframe
        self._need_keyframe = self.video
        self._frame_ts: int | None = None
        self._parts: list[bytes] = []
        self._keyframe = False
        self._next_seq: int | None = None
        self._broken = False
        self._ts_cycles = 0
        self._last_ts: int | None = None
        self.dropped_frames = 0

    def reset(self) -> None:
        """Forget the partial frame and wait for a keyframe (after a pause)."""
        self._frame_ts = None
        self._parts = []
        self._need_keyframe = self.video
        if self.video:
            self._request_keyframe()

    def _unwrap(self, ts: int) -> int:
        if self._last_ts is not None and ts < self._last_ts and self._last_ts - ts > _TS_MOD // 2:
            self._ts_cycles += 1
        elif self._last_ts is not None and ts > self._last_ts and ts - self._last_ts > _TS_MOD // 2:
            return ts + (self._ts_cycles - 1) * _TS_MOD  # late packet from before a wrap
        self._last_ts = ts
        return ts + self._ts_cycles * _TS_MOD

    def push(self, packet: RtpPacket) -> EncodedFrame | None:
        if not self.video:
            return EncodedFrame(self._unwrap(packet.timestamp), packet.payload, True)
        in_order = self._next_seq is None or packet.sequence_number == self._next_seq
        if (
            self._next_seq is not None
            and (packet.sequence_number - self._next_seq) % _SEQ_MOD >= 0x8000
        ):
            return None  # late or duplicate packet: its frame was already settled
        self._next_seq = (packet.sequence_number + 1) % _SEQ_MOD
        if packet.timestamp != self._frame_ts:
            self._frame_ts = packet.timestamp
            self._parts = []
            self._broken = False
            self._keyframe = is_keyframe_start(self.codec_name, packet.payload)
        if not in_order:
            self._broken = True  # a packet of this frame (or of its start) is missing
        try:
            self._parts.append(depayload(self._codec, packet.payload))
        except ValueError:
            self._broken = True
        if not packet.marker:
            return None
        frame_ts, parts, broken = self._frame_ts, self._parts, self._broken
        self._frame_ts, self._parts = None, []
        if broken or (self._need_keyframe and not self._keyframe):
            self.dropped_frames += 1
            self._need_keyframe = True
            self._request_keyframe()
            return None
        self._need_keyframe = False
        assert frame_ts is not None
        return EncodedFrame(self._unwrap(frame_ts), b"".join(parts), self._keyframe)
