"""Asking a browser publisher for simulcast in the server's offer.

aiortc neither offers nor parses simulcast, but the server is always the
offerer, and a browser that answers an m-section carrying ``a=rid:... recv``
and ``a=simulcast:recv`` creates one encoding per rid on its sender (JSEP
5.10; Chrome, Firefox, Safari). So the offer text sent to the page gets those
lines on the publish video m-section; aiortc's own description is unchanged,
it ignores them in the answer, and the forwarder tells the encodings apart by
SSRC and by their keyframes' size (``media.layers``), not by rid.

The page sets each encoding's scale, bit rate and ``scalabilityMode`` (L1T3:
three VP8 temporal layers) itself (``web/static/call-peer.js``).
"""

from __future__ import annotations

from typing import Final

from media.sdp_text import add_extmap, joined, sections

__all__ = ["RID_EXTENSION_ID", "SIMULCAST_RIDS", "START_KBPS", "offer_simulcast"]

#: Lowest to highest: quarter, half and full resolution.
SIMULCAST_RIDS: Final = ("q", "h", "f")
#: The rtp-stream-id header extension must be negotiated for rid simulcast; aiortc uses 1-3.
RID_EXTENSION_ID: Final = 10
RID_EXTENSION_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
#: Where a publisher's send-side estimate starts (kbit/s): both encodings of a 480-line camera.
START_KBPS: Final = 800


def _start_bitrate(section: list[str], kbps: int) -> None:
    """Add ``x-google-start-bitrate`` to every VP8 payload type of an m-section."""
    vp8 = [
        line.split()[0].split(":", 1)[1]
        for line in section
        if line.startswith("a=rtpmap:") and line.upper().endswith(" VP8/90000")
    ]
    for pt in vp8:
        param = f"x-google-start-bitrate={kbps}"
        fmtp = next((i for i, line in enumerate(section) if line.startswith(f"a=fmtp:{pt} ")), None)
        if fmtp is not None:
            section[fmtp] += f";{param}"
        else:
            at = next(i for i, line in enumerate(section) if line.startswith(f"a=rtpmap:{pt} "))
            section.insert(at + 1, f"a=fmtp:{pt} {param}")


def offer_simulcast(
    sdp: str,
    mid: str,
    rids: tuple[str, ...] = SIMULCAST_RIDS,
    start_kbps: int | None = START_KBPS,
) -> str:
    """``sdp`` with the m-section of ``mid`` receiving simulcast in ``rids`` (else unchanged).

    ``start_kbps`` goes on its VP8 format as ``x-google-start-bitrate``: libwebrtc
    starts its send-side estimate there instead of at 300 kbit/s, so the higher
    encodings start at once instead of after ~20 s of ramping (a publisher whose
    uplink cannot take it backs off within a second or two, from REMB and loss).
    """
    parts = sections(sdp)
    for section in parts[1:]:
        if f"a=mid:{mid}" not in section or not section[0].startswith("m=video"):
            continue
        if any(line.startswith("a=simulcast:") for line in section):
            break
        add_extmap(section, RID_EXTENSION_ID, RID_EXTENSION_URI)
        end = len(section)
        while end > 0 and section[end - 1] == "":
            end -= 1
        section[end:end] = [f"a=rid:{rid} recv" for rid in rids] + [
            f"a=simulcast:recv {';'.join(rids)}"
        ]
        if start_kbps:
            _start_bitrate(section, start_kbps)
        break
    return joined(parts)
