"""FrameAssembler over a lossy transport: deterministic loss, reordering and duplicates.

As aiortc's tests do with ``DummyConnection.loss_pattern``, packets are dropped,
swapped or repeated by a fixed pattern, so every run sees the same network. The
publisher is real (aiortc's VP8 encoder and packetizer) and answers keyframe
requests as a sender answers a PLI. The oracle: a frame comes out exactly when
all its packets arrived and the frame before it came out (or it is a keyframe);
what comes out is byte for byte what was encoded and decodes without an error.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.codecs import depayload
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.depacketize import MAX_PENDING, EncodedFrame, FrameAssembler

FRAMES = 90
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000)


@dataclass
class _Sent:
    timestamp: int
    keyframe: bool
    packets: list[RtpPacket]
    data: bytes


@dataclass
class Publisher:
    """Encodes a noisy picture per frame; a keyframe when the assembler asks for one."""

    first_seq: int = 65_500  # wraps during the test
    ts_offset: int = (1 << 32) - 200_000  # the RTP timestamp wraps too
    want_keyframe: bool = False
    keyframe_requests: int = 0
    sent: list[_Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._encoder = Vp8Encoder()
        self._rng = np.random.default_rng(7)
        self._seq = self.first_seq

    def ask_keyframe(self) -> None:
        self.keyframe_requests += 1
        self.want_keyframe = True

    def frame(self, n: int) -> list[RtpPacket]:
        pixels = self._rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        picture.pts, picture.time_base = n * 3000, Fraction(1, 90_000)
        keyframe = n == 0 or self.want_keyframe
        self.want_keyframe = False
        payloads, ts = self._encoder.encode(picture, force_keyframe=keyframe)
        ts = (ts + self.ts_offset) % (1 << 32)
        packets = []
        for i, payload in enumerate(payloads):
            packet = RtpPacket(
                payload_type=96,
                marker=int(i == len(payloads) - 1),
                sequence_number=self._seq,
                timestamp=ts,
                payload=payload,
            )
            self._seq = (self._seq + 1) % (1 << 16)
            packets.append(packet)
        data = b"".join(depayload(VP8, p) for p in payloads)
        self.sent.append(_Sent(ts, data[0] & 0x01 == 0, packets, data))
        return packets


def _network(packets: list[RtpPacket], index: int, pattern: str) -> tuple[list[RtpPacket], int]:
    """What arrives of these packets: ``pattern`` per packet, cycled (aiortc's loss_pattern).

    ``.`` delivers, ``x`` drops, ``d`` delivers twice, ``s`` swaps with the next packet.
    """
    out: list[RtpPacket] = []
    held: RtpPacket | None = None
    for packet in packets:
        step = pattern[index % len(pattern)]
        index += 1
        if step == "x":
            continue
        if step == "s" and held is None:
            held = packet
            continue
        out.append(packet)
        if step == "d":
            out.append(packet)
        if held is not None:
            out.append(held)
            held = None
    if held is not None:
        out.append(held)
    return out, index


def _run(pattern: str) -> tuple[Publisher, list[EncodedFrame], list[bool], FrameAssembler, int]:
    """Frames out, which frames arrived whole, and how many arrived not at all."""
    publisher = Publisher()
    assembler = FrameAssembler("VP8", publisher.ask_keyframe)
    out: list[EncodedFrame] = []
    arrived: list[bool] = []
    unseen = 0
    index = 0
    for n in range(FRAMES):
        packets = publisher.frame(n)
        delivered, index = _network(packets, index, pattern)
        got = {p.sequence_number for p in delivered}
        arrived.append(got >= {p.sequence_number for p in packets})
        unseen += not got
        for packet in delivered:
            out += assembler.push(packet)
    return publisher, out, arrived, assembler, unseen


def _expected(publisher: Publisher, arrived: list[bool]) -> list[int]:
    """Timestamps that must come out: complete, and decodable (the chain since a keyframe)."""
    expected: list[int] = []
    previous_out = False
    for sent, complete in zip(publisher.sent, arrived, strict=True):
        out = complete and (sent.keyframe or previous_out)
        if out:
            expected.append(sent.timestamp)
        previous_out = out
    return expected


def _decode_all(frames: list[EncodedFrame]) -> int:
    decoder = av.CodecContext.create("vp8", "r")
    pictures = 0
    for frame in frames:
        pictures += len(decoder.decode(av.Packet(frame.data)))
    return pictures


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(".", id="clean"),
        pytest.param("....s", id="reordered"),
        pytest.param("...d", id="duplicated"),
        pytest.param("..s.d....", id="reordered-and-duplicated"),
    ],
)
def test_no_frame_is_lost_without_loss(pattern: str) -> None:
    publisher, out, arrived, assembler, _ = _run(pattern)
    assert all(arrived)
    assert [f.timestamp % (1 << 32) for f in out] == [s.timestamp for s in publisher.sent]
    assert [f.data for f in out] == [s.data for s in publisher.sent]
    assert assembler.dropped_frames == 0 and publisher.keyframe_requests == 0
    assert _decode_all(out) == FRAMES


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("........x", id="one-in-nine"),
        pytest.param("..s..x..d.....x...", id="lossy-reordered-duplicated"),
        pytest.param("." * 60 + "xxxxx" + "." * 60, id="burst"),
    ],
)
def test_loss_drops_exactly_the_undecodable_frames_and_recovers(pattern: str) -> None:
    publisher, out, arrived, assembler, unseen = _run(pattern)
    assert not all(arrived), "the pattern must lose something"
    expected = _expected(publisher, arrived)
    got = [f.timestamp % (1 << 32) for f in out]
    assert got == expected
    by_ts = {s.timestamp: s for s in publisher.sent}
    assert all(f.data == by_ts[f.timestamp % (1 << 32)].data for f in out)
    # Timestamps come out unwrapped, strictly increasing, across the 32-bit wrap.
    assert all(b.timestamp > a.timestamp for a, b in itertools.pairwise(out))
    assert out[-1].timestamp >= 1 << 32
    # Asked for keyframes, got them, and the stream came back after every loss.
    assert publisher.keyframe_requests > 0
    # Every frame that did not come out was dropped, but for the last few still pending
    # and those of which not one packet arrived (nothing to drop).
    missing = FRAMES - len(expected) - unseen
    assert missing - MAX_PENDING <= assembler.dropped_frames <= missing
    assert sum(1 for s in publisher.sent if s.keyframe) > 1
    assert len(expected) > FRAMES // 3
    assert _decode_all(out) == len(out)


def test_opus_duplicates_and_late_packets_never_go_back_in_time() -> None:
    assembler = FrameAssembler("opus", lambda: None)
    packets = [
        RtpPacket(
            payload_type=111,
            sequence_number=(65_530 + n) % (1 << 16),
            timestamp=(4_294_960_000 + n * 960) % (1 << 32),
            payload=bytes([0xFC, n]),
        )
        for n in range(30)
    ]
    arriving = [*packets[:10], packets[9], packets[11], packets[10], *packets[12:]]
    out = [frame for packet in arriving for frame in assembler.push(packet)]
    assert all(b.timestamp > a.timestamp for a, b in itertools.pairwise(out))
    assert [f.data[1] for f in out] == [*range(10), *range(11, 30)]  # packet 10 came too late
    assert assembler.ignored_packets == 2
