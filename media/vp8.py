"""The VP8 RTP payload descriptor (RFC 7741 section 4.2): read it, and rewrite its numbering.

Dropping a subscriber's upper temporal layers or switching it to another
simulcast encoding leaves gaps in the picture ids and a jump in TL0PICIDX;
a browser's VP8 reference finder then waits for frames that never come. As
mediasoup's ``RTC::Codecs::VP8`` and LiveKit's ``VP8Munger`` do, the forwarder
renumbers both per subscriber so each sees one continuous stream. Pure bytes.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Vp8Descriptor", "parse_vp8", "rewrite_vp8"]

_KEYFRAME_START_CODE: Final = b"\x9d\x01\x2a"


class Vp8Descriptor:
    """The fields of one packet's descriptor the forwarder uses (-1: absent)."""

    __slots__ = (
        "height",
        "keyframe",
        "picture_id",
        "pid_bits",
        "pid_pos",
        "start",
        "sync",
        "tid",
        "tl0",
        "tl0_pos",
        "width",
    )

    def __init__(self) -> None:
        #: First packet of a frame (S bit set, partition 0).
        self.start = False
        #: The first packet of a keyframe.
        self.keyframe = False
        self.picture_id = -1
        #: 7 or 15 (M bit); 0 when there is no picture id.
        self.pid_bits = 0
        self.pid_pos = 0
        self.tl0 = -1
        self.tl0_pos = 0
        #: Temporal layer index, -1 when the packet has none (no temporal scalability).
        self.tid = -1
        #: Layer sync (Y): decodable from TL0 alone, so a subscriber may step up here.
        self.sync = False
        #: Frame size from a keyframe's header, else 0.
        self.width = 0
        self.height = 0

    def __repr__(self) -> str:
        return (
            f"Vp8Descriptor(pid={self.picture_id}, tl0={self.tl0}, tid={self.tid}, "
            f"sync={self.sync}, start={self.start}, keyframe={self.keyframe}, "
            f"{self.width}x{self.height})"
        )


def parse_vp8(payload: bytes) -> Vp8Descriptor | None:
    """The descriptor of a VP8 RTP payload; None if it is too short to be one."""
    size = len(payload)
    if size < 1:
        return None
    d = Vp8Descriptor()
    first = payload[0]
    d.start = bool(first & 0x10) and first & 0x0F == 0
    pos = 1
    if first & 0x80:  # X
        if size < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id
            if size <= pos:
                return None
            if payload[pos] & 0x80:  # M: 15 bits
                if size <= pos + 1:
                    return None
                d.picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                d.pid_bits = 15
                d.pid_pos = pos
                pos += 2
            else:
                d.picture_id = payload[pos] & 0x7F
                d.pid_bits = 7
                d.pid_pos = pos
                pos += 1
        if ext & 0x40:  # L: TL0PICIDX
            if size <= pos:
                return None
            d.tl0 = payload[pos]
            d.tl0_pos = pos
            pos += 1
        if ext & 0x30:  # T or K: one shared octet
            if size <= pos:
                return None
            octet = payload[pos]
            if ext & 0x20:
                d.tid = octet >> 6
                d.sync = bool(octet & 0x20)
            pos += 1
    if d.start and size > pos and payload[pos] & 0x01 == 0:  # frame tag P bit: 0 = keyframe
        d.keyframe = True
        if size >= pos + 10 and payload[pos + 3 : pos + 6] == _KEYFRAME_START_CODE:
            d.width = (payload[pos + 6] | (payload[pos + 7] << 8)) & 0x3FFF
            d.height = (payload[pos + 8] | (payload[pos + 9] << 8)) & 0x3FFF
    return d


def rewrite_vp8(payload: bytes, d: Vp8Descriptor, picture_id: int, tl0: int) -> bytes:
    """``payload`` with its picture id and TL0PICIDX replaced (same widths, same length)."""
    out = bytearray(payload)
    if d.pid_bits == 15:
        out[d.pid_pos] = 0x80 | ((picture_id >> 8) & 0x7F)
        out[d.pid_pos + 1] = picture_id & 0xFF
    elif d.pid_bits == 7:
        out[d.pid_pos] = picture_id & 0x7F
    if d.tl0 >= 0:
        out[d.tl0_pos] = tl0 & 0xFF
    return bytes(out)
