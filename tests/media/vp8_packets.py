"""VP8 RTP packets as a browser sends them (descriptor of RFC 7741, frame header), for tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.rtp_header import RtpView

VP8_PT = 96


def vp8_payload(
    *,
    picture_id: int,
    tl0: int,
    tid: int,
    sync: bool = False,
    keyframe: bool = False,
    start: bool = True,
    width: int = 640,
    height: int = 480,
    size: int = 40,
) -> bytes:
    """A payload with X, I (15-bit picture id), L and T set."""
    first = 0x80 | (0x10 if start else 0)
    ext = 0x80 | 0x40 | 0x20
    descriptor = bytes(
        [
            first,
            ext,
            0x80 | ((picture_id >> 8) & 0x7F),
            picture_id & 0xFF,
            tl0 & 0xFF,
            (tid << 6) | (0x20 if sync else 0),
        ]
    )
    if start and keyframe:
        frame = (
            b"\x00\x00\x00\x9d\x01\x2a" + width.to_bytes(2, "little") + height.to_bytes(2, "little")
        )
    elif start:
        frame = b"\x01"
    else:
        frame = b""
    return descriptor + frame + b"\x55" * max(0, size - len(descriptor) - len(frame))


# L1T3: the temporal layer of frame n of a 4-frame cycle (0, 2, 1, 2).
L1T3_PATTERN = (0, 2, 1, 2)


@dataclass
class Vp8Stream:
    """One simulcast encoding: consecutive frames, each of ``packets_per_frame`` packets."""

    ssrc: int
    width: int = 640
    height: int = 480
    packets_per_frame: int = 2
    temporal_layers: int = 3
    seq: int = 1000
    ts: int = 90_000
    picture_id: int = 100
    tl0: int = 5
    frame: int = 0
    sent: list[RtpView] = field(default_factory=list)

    def next_frame(self, *, keyframe: bool = False, size: int = 40) -> list[RtpView]:
        if keyframe:
            self.frame = 0
        if self.temporal_layers == 3:
            tid = L1T3_PATTERN[self.frame % 4]
        elif self.temporal_layers == 2:
            tid = self.frame % 2
        else:
            tid = 0
        if tid == 0 and not keyframe:
            self.tl0 = (self.tl0 + 1) & 0xFF
        # Layer sync: the first frame of each upper layer after a TL0 frame.
        sync = tid > 0 and self.frame % 4 in (1, 2)
        packets = []
        for k in range(self.packets_per_frame):
            payload = vp8_payload(
                picture_id=self.picture_id,
                tl0=self.tl0,
                tid=tid,
                sync=sync,
                keyframe=keyframe and k == 0,
                start=k == 0,
                width=self.width,
                height=self.height,
                size=size,
            )
            packets.append(
                RtpView(
                    VP8_PT,
                    1 if k == self.packets_per_frame - 1 else 0,
                    self.seq,
                    self.ts,
                    self.ssrc,
                    payload,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 3000) & 0xFFFFFFFF
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        self.frame += 1
        self.sent += packets
        return packets
