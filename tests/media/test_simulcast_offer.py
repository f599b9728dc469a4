"""The offer a page gets asks for simulcast on its camera's m-section, and only there."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from media.simulcast import RID_EXTENSION_ID, RID_EXTENSION_URI, offer_simulcast


async def _offer() -> str:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")  # the page's camera: mid 1
        pc.addTransceiver("video", direction="sendonly")  # someone else's camera for it
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def _sections(sdp: str) -> list[list[str]]:
    out: list[list[str]] = []
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            out.append([])
        if out:
            out[-1].append(line)
    return out


async def test_the_publish_video_section_gets_rids_and_the_rid_extension() -> None:
    sdp = await _offer()
    shaped = offer_simulcast(sdp, "1")
    audio, camera, other = _sections(shaped)
    assert "a=simulcast:recv q;h;f" in camera
    assert [line for line in camera if line.startswith("a=rid:")] == [
        "a=rid:q recv",
        "a=rid:h recv",
        "a=rid:f recv",
    ]
    assert f"a=extmap:{RID_EXTENSION_ID} {RID_EXTENSION_URI}" in camera
    assert not any("simulcast" in line or "rid" in line for line in audio + other)
    # Everything else is as aiortc wrote it.
    assert "a=fmtp:97 x-google-start-bitrate=800" in camera  # VP8 of aiortc's offer
    assert not any("x-google" in line for line in audio + other)
    added = ("a=rid:", "a=simulcast:", f"a=extmap:{RID_EXTENSION_ID} ", "a=fmtp:97 x-google")
    kept = [line for line in shaped.split("\r\n") if not line.startswith(added)]
    assert kept == sdp.split("\r\n")
    assert offer_simulcast(shaped, "1") == shaped  # idempotent


async def test_an_audio_mid_or_unknown_mid_changes_nothing() -> None:
    sdp = await _offer()
    assert offer_simulcast(sdp, "0") == sdp
    assert offer_simulcast(sdp, "9") == sdp
