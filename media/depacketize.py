"""RTP packets of one track back into encoded frames, for remuxing.

Video packets are grouped by RTP timestamp. A frame is complete when its first
packet (the codec's start-of-frame flag), its marker packet and every sequence
number between them have arrived, in any order: packets reordered on the way
are put back in order. A few frames may be pending at once; when a frame is
still incomplete once ``MAX_PENDING`` frames are open it is lost — dropped,
and the track waits for the next keyframe (asking for one), so a file never
holds a frame that cannot be decoded. Late packets of a settled frame and
duplicates are ignored.

Each Opus packet is a frame; duplicates and packets that arrive after a newer
one are dropped (the timeline must only move forward).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.keyframes import is_keyframe_start

_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32
#: Frames open at once before the oldest incomplete one is given up.
MAX_PENDING: Final = 3
#: Packets one frame may have (a 4K keyframe is a few hundred).
MAX_PACKETS_PER_FRAME: Final = 2000

_H264_STAP_A: Final = 24
_H264_FU_A: Final = 28


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame; ``timestamp`` is the unwrapped RTP timestamp."""

    timestamp: int
    data: bytes
    keyframe: bool


def _codec(name: str, clock_rate: int) -> RTCRtpCodecParameters:
    kind = "audio" if name.lower() == "opus" else "video"
    return RTCRtpCodecParameters(mimeType=f"{kind}/{name}", clockRate=clock_rate)


def is_frame_start(codec_name: str, payload: bytes) -> bool:
    """True if this RTP payload begins a frame (VP8: RFC 7741 S bit, partition 0;
    H.264: RFC 6184 single NAL unit, STAP-A, or the first FU-A fragment)."""
    if not payload:
        return False
    name = codec_name.upper()
    if name == "VP8":
        return bool(payload[0] & 0x10) and payload[0] & 0x0F == 0
    if name == "H264":
        nal_type = payload[0] & 0x1F
        if 1 <= nal_type <= _H264_STAP_A:
            return True
        return nal_type == _H264_FU_A and len(payload) > 1 and bool(payload[1] & 0x80)
    return True


def _newer(a: int, b: int, modulo: int) -> bool:
    """``a`` comes after ``b`` in a wrapping sequence."""
    return 0 < (a - b) % modulo < modulo // 2


@dataclass
class _Pending:
    timestamp: int
    packets: dict[int, bytes] = field(default_factory=dict)
    start_seq: int | None = None
    marker_seq: int | None = None
    keyframe: bool = False

    def add(self, codec_name: str, packet: RtpPacket) -> None:
        seq = packet.sequence_number
        if seq in self.packets or len(self.packets) >= MAX_PACKETS_PER_FRAME:
            return
        self.packets[seq] = packet.payload
        if is_frame_start(codec_name, packet.payload):
            self.start_seq = seq
            self.keyframe = is_keyframe_start(codec_name, packet.payload)
        if packet.marker:
            self.marker_seq = seq

    def in_order(self) -> list[bytes] | None:
        """The payloads in sequence order when every one has arrived, else None."""
        if self.start_seq is None or self.marker_seq is None:
            return None
        count = (self.marker_seq - self.start_seq) % _SEQ_MOD + 1
        if count > len(self.packets):
            return None
        seqs = [(self.start_seq + i) % _SEQ_MOD for i in range(count)]
        if any(s not in self.packets for s in seqs):
            return None
        return [self.packets[s] for s in seqs]


class FrameAssembler:
    """Feeds on RTP packets of one track (in arrival order), yields whole frames in order."""

    def __init__(self, codec_name: str, request_keyframe: Callable[[], None]) -> None:
        self.codec_name = codec_name
        self.video = codec_name.lower() != "opus"
        self._codec = _codec(codec_name, 90_000 if self.video else 48_000)
        self._request_keyframe = request_keyframe
        self._need_keyframe = self.video
        self._pending: dict[int, _Pending] = {}
        self._settled_ts: int | None = None  # newest frame emitted or given up (video)
        self._last_seq: int | None = None  # newest packet taken (audio)
        self._ts_cycles = 0
        self._last_ts: int | None = None
        self.dropped_frames = 0
        self.ignored_packets = 0

    def reset(self) -> None:
        """Forget partial frames and wait for a keyframe (after a pause)."""
        self._pending = {}
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

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        """Take one packet; every frame that became ready, oldest first."""
        if not self.video:
            seq = packet.sequence_number
            if self._last_seq is not None and not _newer(seq, self._last_seq, _SEQ_MOD):
                self.ignored_packets += 1  # duplicate, or late behind a newer packet
                return []
            self._last_seq = seq
            return [EncodedFrame(self._unwrap(packet.timestamp), packet.payload, True)]
        ts = packet.timestamp
        if self._settled_ts is not None and not _newer(ts, self._settled_ts, _TS_MOD):
            self.ignored_packets += 1  # late: its frame was emitted or given up already
            return []
        pending = self._pending.get(ts)
        if pending is None:
            pending = self._pending[ts] = _Pending(ts)
        pending.add(self.codec_name, packet)
        return self._settle()

    def _settle(self) -> list[EncodedFrame]:
        out: list[EncodedFrame] = []
        while self._pending:
            oldest = min(
                self._pending.values(), key=lambda p: (p.timestamp - self._base()) % _TS_MOD
            )
            payloads = oldest.in_order()
            if payloads is None and len(self._pending) <= MAX_PENDING:
                break  # wait: its missing packets may still come
            del self._pending[oldest.timestamp]
            self._settled_ts = oldest.timestamp
            frame = self._frame(oldest, payloads)
            if frame is not None:
                out.append(frame)
        return out

    def _base(self) -> int:
        """A timestamp before every pending one (for ordering across a wrap)."""
        if self._settled_ts is not None:
            return self._settled_ts
        return min(self._pending) if self._pending else 0

    def _frame(self, pending: _Pending, payloads: list[bytes] | None) -> EncodedFrame | None:
        data: bytes | None = None
        if payloads is not None:
            try:
                data = b"".join(depayload(self._codec, p) for p in payloads)
            except ValueError:
                data = None
        if data is None or (self._need_keyframe and not pending.keyframe):
            self.dropped_frames += 1
            self._need_keyframe = True
            self._request_keyframe()
            return None
        self._need_keyframe = False
        return EncodedFrame(self._unwrap(pending.timestamp), data, pending.keyframe)
