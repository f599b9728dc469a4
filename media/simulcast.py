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

__all__ = ["RID_EXTENSION_ID", "SIMULCAST_RIDS", "offer_simulcast"]

#: Lowest to highest: quarter, half and full resolution.
SIMULCAST_RIDS: Final = ("q", "h", "f")
#: The rtp-stream-id header extension must be negotiated for rid simulcast; aiortc uses 1-3.
RID_EXTENSION_ID: Final = 10
RID_EXTENSION_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"


def offer_simulcast(sdp: str, mid: str, rids: tuple[str, ...] = SIMULCAST_RIDS) -> str:
    """``sdp`` with the m-section of ``mid`` receiving simulcast in ``rids`` (else unchanged)."""
    lines = sdp.split("\r\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    for section in sections[1:]:
        if f"a=mid:{mid}" not in section or not section[0].startswith("m=video"):
            continue
        if any(line.startswith("a=simulcast:") for line in section):
            break
        extmaps = [i for i, line in enumerate(section) if line.startswith("a=extmap:")]
        at = (extmaps[-1] + 1) if extmaps else len(section)
        section.insert(at, f"a=extmap:{RID_EXTENSION_ID} {RID_EXTENSION_URI}")
        end = len(section)
        while end > 0 and section[end - 1] == "":
            end -= 1
        section[end:end] = [f"a=rid:{rid} recv" for rid in rids] + [
            f"a=simulcast:recv {';'.join(rids)}"
        ]
        break
    return "\r\n".join(line for section in sections for line in section)
