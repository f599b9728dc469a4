"""Offer and answer text by m-section, for the lines aiortc neither writes nor reads
(simulcast's rids, transport-wide feedback): split, add a header extension, join."""

from __future__ import annotations

__all__ = ["add_extmap", "joined", "sections"]


def sections(sdp: str) -> list[list[str]]:
    """The session part, then one list of lines per m-section (CRLF-separated text)."""
    out: list[list[str]] = [[]]
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            out.append([])
        out[-1].append(line)
    return out


def joined(parts: list[list[str]]) -> str:
    """The text of ``sections`` again."""
    return "\r\n".join(line for section in parts for line in section)


def add_extmap(section: list[str], ext_id: int, uri: str) -> None:
    """An ``a=extmap`` line after the m-section's others (at its end if it has none)."""
    extmaps = [i for i, line in enumerate(section) if line.startswith("a=extmap:")]
    at = (extmaps[-1] + 1) if extmaps else len(section)
    section.insert(at, f"a=extmap:{ext_id} {uri}")
