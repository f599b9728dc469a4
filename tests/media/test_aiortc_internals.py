"""Fails loudly when aiortc changes under media.aiortc_internals."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import sfu_loopback

from media.aiortc_internals import (
    SUPPORTED_AIORTC,
    AiortcVersionError,
    check_aiortc_version,
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


async def test_every_private_attribute_used_exists() -> None:
    pc = sfu_loopback.new_pc()
    try:
        transceiver = pc.addTransceiver("video", direction="sendrecv")
        missing = missing_attributes(transceiver.receiver, transceiver.sender, transceiver)
        assert missing == [], f"aiortc changed: {missing}"
    finally:
        await pc.close()


@pytest.mark.parametrize("audio_level", [None, (True, 30), (False, 127)])
def test_fast_serialize_matches_aiortc(audio_level: tuple[bool, int] | None) -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from media.aiortc_internals import extension_ids, serialize_rtp

    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"
                ),
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    packet = RtpPacket(
        payload_type=97, marker=1, sequence_number=65535, timestamp=4_000_000_000, ssrc=123456789
    )
    packet.payload = bytes(range(200))
    packet.extensions.mid = "12"
    packet.extensions.abs_send_time = 0xABCDEF
    packet.extensions.audio_level = audio_level
    expected = packet.serialize(extensions_map)
    ids = extension_ids(extensions_map)
    mid_element = bytes([(ids.mid << 4) | 1]) + b"12"
    got = serialize_rtp(
        ids,
        mid_element,
        97,
        1,
        65535,
        4_000_000_000,
        123456789,
        0xABCDEF,
        audio_level,
        packet.payload,
    )
    assert got == expected
