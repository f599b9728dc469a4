"""Where a server's busy time goes: py-spy ``--format raw`` stacks bucketed by their leaf.

    .venv/bin/python bench/profile_breakdown.py PROFILE.txt [...]

Each sample's innermost frames decide its bucket: the socket send, SRTP (C,
called from one Python line), RTP parsing, aiortc's bandwidth estimator,
asyncio/aioice plumbing, our forwarding code, idle (waiting in epoll/select),
other. Percentages are of busy (non-idle) samples.
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

# (bucket, pattern on one frame "function (file:line)"), checked innermost frame first.
# aiortc_internals still matches for profiles taken before datagram_path and outbound_rtp
# were split out of it.
RULES: list[tuple[str, str]] = [
    ("idle (event loop wait)", r"(^|\.)(select|poll) \(selectors"),
    ("idle (event loop wait)", r"^(Condition\.wait|Event\.wait|_worker) \((threading|concurrent)"),
    ("idle (event loop wait)", r"(^|\.)(wait|_wait_for_tstate_lock|readline) \((threading|queue)"),
    ("uvloop's loop in C (epoll, callbacks, its sendto)", r"^Runner\.run \(asyncio/runners"),
    ("socket send (sendto)", r"(^|\.)sendto \("),
    ("socket send (sendto)", r"\._write \(.*(datagram_path|aiortc_internals)"),
    ("socket send (sendto)", r"(^|\.)send_data \(.*aioice/ice"),
    ("SRTP protect/unprotect", r"\b(protect|unprotect|protect_rtcp|unprotect_rtcp) \("),
    ("SRTP protect/unprotect", r"pylibsrtp"),
    (
        "SRTP protect/unprotect",
        r"\.(send_rtp|send_rtcp|_receive_rtp) \(.*(datagram_path|aiortc_internals)",
    ),
    ("SRTP protect/unprotect", r"\._send_rtp \(.*rtcdtlstransport"),
    ("REMB estimator (aiortc rate.py)", r"aiortc/rate\.py"),
    ("REMB estimator (aiortc rate.py)", r"remb_feed\.py"),
    ("RTP parse", r"\(.*aiortc/rtp\.py"),
    ("RTP parse", r"parse_rtp \("),
    ("RTP header write", r"rtp_header\.py"),
    ("receive stats / NACK generator (aiortc)", r"aiortc/rtcrtpreceiver\.py"),
    (
        "asyncio / aioice plumbing",
        r"(asyncio/|aioice/|uvloop|queues\.py|rtcdtlstransport|rtcicetransport)",
    ),
    (
        "forwarding code (ours)",
        r"(rtp_forwarder|aiortc_internals|datagram_path|outbound_rtp|keyframes)\.py",
    ),
]
PATTERNS = [(bucket, re.compile(rx)) for bucket, rx in RULES]


def bucket_of(stack: list[str]) -> str:
    leaf = stack[-1]
    for bucket, pattern in PATTERNS[:5]:
        if pattern.search(leaf):
            return bucket
    for frame in reversed(stack):
        for bucket, pattern in PATTERNS:
            if pattern.search(frame):
                return bucket
    return "other"


def breakdown(path: Path) -> tuple[collections.Counter[str], int]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        frames = stack_text.split(";")
        counts[bucket_of(frames)] += int(count_text)
        total += int(count_text)
    return counts, total


def main() -> None:
    for name in sys.argv[1:]:
        counts, total = breakdown(Path(name))
        idle = counts.pop("idle (event loop wait)", 0)
        busy = total - idle
        print(f"{name}: {total} samples, busy {busy / max(total, 1) * 100:.0f} %")
        for bucket, count in counts.most_common():
            print(f"   {bucket:<42} {count / max(busy, 1) * 100:5.1f} % of busy")


if __name__ == "__main__":
    main()
