"""The VP8 payload descriptor: parsed as RFC 7741 lays it out, renumbered in place."""

from __future__ import annotations

from media.vp8 import parse_vp8, rewrite_vp8
from tests.media.vp8_packets import vp8_payload


def test_a_keyframe_descriptor_gives_ids_layer_and_size() -> None:
    d = parse_vp8(
        vp8_payload(picture_id=0x1234, tl0=7, tid=0, keyframe=True, width=320, height=180)
    )
    assert d is not None
    assert (d.picture_id, d.pid_bits, d.tl0, d.tid) == (0x1234, 15, 7, 0)
    assert d.start and d.keyframe
    assert (d.width, d.height) == (320, 180)


def test_an_upper_layer_frame_with_sync_is_not_a_keyframe() -> None:
    d = parse_vp8(vp8_payload(picture_id=5, tl0=9, tid=2, sync=True))
    assert d is not None
    assert (d.tid, d.sync, d.keyframe, d.width) == (2, True, False, 0)
    continuation = parse_vp8(vp8_payload(picture_id=5, tl0=9, tid=2, start=False))
    assert continuation is not None and not continuation.start and not continuation.keyframe


def test_seven_bit_picture_ids_and_no_extension() -> None:
    d = parse_vp8(bytes([0x90, 0x80, 0x05, 0x00]))  # X, S; I with M=0: 7-bit id 5; keyframe tag
    assert d is not None and (d.picture_id, d.pid_bits, d.tl0, d.tid) == (5, 7, -1, -1)
    plain = parse_vp8(bytes([0x10, 0x01]))  # no X: no ids at all, an interframe
    assert plain is not None and (plain.picture_id, plain.pid_bits, plain.keyframe) == (
        -1,
        0,
        False,
    )


def test_truncated_descriptors_are_refused_not_misread() -> None:
    full = vp8_payload(picture_id=300, tl0=1, tid=1)
    for cut in range(0, 6):
        assert parse_vp8(full[:cut]) is None, cut


def test_rewrite_changes_only_the_numbering() -> None:
    payload = vp8_payload(picture_id=0x7FFE, tl0=250, tid=1, sync=True, size=60)
    d = parse_vp8(payload)
    assert d is not None
    out = rewrite_vp8(payload, d, 0x0102, 3)
    again = parse_vp8(out)
    assert again is not None
    assert (again.picture_id, again.tl0, again.tid, again.sync) == (0x0102, 3, 1, True)
    assert len(out) == len(payload)
    assert out[:2] == payload[:2] and out[6:] == payload[6:]
