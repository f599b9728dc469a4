"""Fails loudly when aiortc changes under media.aiortc_internals."""

from __future__ import annotations

import random
from importlib.metadata import version
from typing import Any

import pytest
import sfu_loopback

from media.aiortc_internals import (
    SUPPORTED_AIOICE,
    SUPPORTED_AIORTC,
    AiortcVersionError,
    check_aiortc_version,
    extension_ids,
    missing_attributes,
)


def test_installed_aiortc_is_the_version_the_internals_were_written_for() -> None:
    low, high = SUPPORTED_AIORTC
    major, minor = (int(x) for x in version("aiortc").split(".")[:2])
    assert low <= (major, minor) < high, (
        f"aiortc {version('aiortc')} is installed but media/aiortc_internals.py was written "
        f"for {low}..{high}: re-audit every private attribute it uses"
    )
    check_aiortc_version()


@pytest.mark.parametrize("other", ["1.15.0", "1.17.0", "2.0.0"])
def test_other_versions_are_refused(other: str) -> None:
    with pytest.raises(AiortcVersionError, match="written for aiortc"):
        check_aiortc_version(other)


def test_installed_aioice_is_the_version_the_internals_were_written_for() -> None:
    low, high = SUPPORTED_AIOICE
    major, minor = (int(x) for x in version("aioice").split(".")[:2])
    assert low <= (major, minor) < high, f"aioice {version('aioice')}: re-audit DatagramPath"
    check_aiortc_version(package="aioice")
    with pytest.raises(AiortcVersionError, match="written for aioice"):
        check_aiortc_version("0.14.0", package="aioice")


async def test_every_private_attribute_used_exists() -> None:
    pc = sfu_loopback.new_pc()
    try:
        transceiver = pc.addTransceiver("video", direction="sendrecv")
        missing = missing_attributes(transceiver.receiver, transceiver.sender, transceiver)
        assert missing == [], f"aiortc changed: {missing}"
    finally:
        await pc.close()


def _extensions_map(mid: int, audio_level: int, abs_send_time: int) -> Any:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap

    uris = {
        mid: "urn:ietf:params:rtp-hdrext:sdes:mid",
        audio_level: "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        abs_send_time: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    }
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=i, uri=uri) for i, uri in uris.items() if i
            ]
        )
    )
    return extensions_map


@pytest.mark.parametrize("ids", [(1, 2, 3), (4, 0, 14), (0, 0, 3), (0, 7, 0), (9, 0, 0), (0, 0, 0)])
@pytest.mark.parametrize("mid", ["0", "12", "abcdefghijklmnop", None])
@pytest.mark.parametrize("audio_level", [None, (True, 30), (False, 127)])
def test_header_writer_matches_aiortc_serialize(
    ids: tuple[int, int, int], mid: str | None, audio_level: tuple[bool, int] | None
) -> None:
    """The in-place header path writes byte-identical packets to aiortc's serialize."""
    from aiortc.rtp import RtpPacket

    from media.aiortc_internals import extension_ids
    from media.rtp_header import HeaderWriter

    extensions_map = _extensions_map(*ids)
    writer = HeaderWriter(extension_ids(extensions_map), mid, 97, 123456789)
    rng = random.Random(hash((ids, mid, audio_level)))
    for _ in range(50):
        seq, ts = rng.randrange(1 << 16), rng.randrange(1 << 32)
        marker, abs_send_time = rng.randrange(2), rng.randrange(1 << 24)
        payload = rng.randbytes(rng.randrange(1, 1200))
        packet = RtpPacket(
            payload_type=97, marker=marker, sequence_number=seq, timestamp=ts, ssrc=123456789
        )
        packet.payload = payload
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = abs_send_time
        packet.extensions.audio_level = audio_level
        expected = packet.serialize(extensions_map)
        assert writer.write(marker, seq, ts, abs_send_time, audio_level, payload) == expected


@pytest.mark.parametrize("ids", [(1, 2, 3), (4, 0, 14), (0, 0, 0)])
@pytest.mark.parametrize("padding", [0, 7])
def test_parse_rtp_reads_what_aiortc_reads(ids: tuple[int, int, int], padding: int) -> None:
    from aiortc.rtp import RtpPacket

    from media.rtp_header import parse_rtp

    extensions_map = _extensions_map(*ids)
    rng = random.Random(padding)
    for _ in range(50):
        packet = RtpPacket(
            payload_type=rng.randrange(128),
            marker=rng.randrange(2),
            sequence_number=rng.randrange(1 << 16),
            timestamp=rng.randrange(1 << 32),
            ssrc=rng.randrange(1 << 32),
            payload=rng.randbytes(rng.randrange(1, 1200)),
        )
        packet.csrc = [rng.randrange(1 << 32) for _ in range(rng.randrange(3))]
        packet.extensions.mid = "3"
        packet.extensions.abs_send_time = rng.randrange(1 << 24)
        packet.extensions.audio_level = (bool(rng.randrange(2)), rng.randrange(128))
        packet.padding_size = padding
        data = packet.serialize(extensions_map)
        parsed = RtpPacket.parse(data, extensions_map)
        view = parse_rtp(data, extension_ids(extensions_map))
        assert view is not None
        assert (view.payload_type, view.marker, view.sequence_number) == (
            parsed.payload_type,
            parsed.marker,
            parsed.sequence_number,
        )
        assert (view.timestamp, view.ssrc, view.payload, view.padding_size) == (
            parsed.timestamp,
            parsed.ssrc,
            parsed.payload,
            parsed.padding_size,
        )
        assert view.abs_send_time == parsed.extensions.abs_send_time
        assert view.audio_level == parsed.extensions.audio_level


def test_parse_rtp_refuses_what_is_not_rtp() -> None:
    from media.rtp_header import ExtensionIds, parse_rtp

    ids = ExtensionIds(1, 2, 3)
    assert parse_rtp(b"\x80\x60\x00", ids) is None  # too short
    assert parse_rtp(bytes(20), ids) is None  # version 0
    assert parse_rtp(b"\x90\x60" + bytes(10) + b"\xbe\xde\x00\x09", ids) is None  # ext overruns
    assert parse_rtp(b"\xa0\x60" + bytes(10) + b"\x00\x00\x40", ids) is None  # padding overruns


def test_the_wire_overhead_is_what_a_forwarded_packet_costs_after_srtp() -> None:
    """Every rate the adaptation compares (layer rates, what each stream sent, the pacer's
    tokens) counts ``WIRE_OVERHEAD`` per packet: it must be what a packet
    ``HeaderWriter`` wrote costs once SRTP protected it (aiortc's preferred profile) and
    UDP/IPv4 carry it, for video and for audio with its level."""
    import itertools
    import os

    from aiortc.rtcdtlstransport import SRTP_PROFILES
    from pylibsrtp import Policy, Session

    from media.rtp_header import WIRE_OVERHEAD, ExtensionIds, HeaderWriter

    key_bytes = {
        Policy.SRTP_PROFILE_AEAD_AES_256_GCM: 32 + 12,
        Policy.SRTP_PROFILE_AEAD_AES_128_GCM: 16 + 12,
        Policy.SRTP_PROFILE_AES128_CM_SHA1_80: 16 + 14,
    }
    udp_ipv4 = 28
    payload = bytes(900)
    seq = itertools.count(1)
    costs: dict[bytes, set[int]] = {}
    for profile in SRTP_PROFILES:
        session = Session(
            Policy(
                key=os.urandom(key_bytes[profile.libsrtp_profile]),
                ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=profile.libsrtp_profile,
            )
        )
        for mid in ("0", "1", "2", "3"):
            writer = HeaderWriter(ExtensionIds(mid=1, abs_send_time=2, audio_level=3), mid, 96, 7)
            for level in (None, (True, 30)):
                rtp = writer.write(0, next(seq), 3000, 5, level, payload)
                wire = len(session.protect(rtp)) + udp_ipv4
                costs.setdefault(profile.openssl_profile, set()).add(wire - len(payload))
    assert costs[SRTP_PROFILES[0].openssl_profile] == {WIRE_OVERHEAD}, costs
    assert all(WIRE_OVERHEAD - 6 <= c <= WIRE_OVERHEAD for cs in costs.values() for c in cs)
