"""Transport-wide congestion control feedback for probe padding: how the queue grows.

A padding probe must tell "the link takes this rate" from "the link's queue is
filling". Loss and the browser's REMB tell it late: a rate-limited link drops
only once its queue is full (at 300 kbit/s a probe 20 % over the link lost a
second of packets, audio among them, before anything was reported), and a REMB
drop comes from the same queue. Per-packet arrival times tell it early: the
queue shows as one-way delay growing while the padding is sent.

So the server asks each subscriber's browser for transport-wide feedback
(draft-holmer-rmcat-transport-wide-cc-extensions-01, libwebrtc's
``RemoteEstimatorProxy``) on the video it *sends* to it: the offer gets the
transport-wide sequence number header extension and ``a=rtcp-fb:PT
transport-cc`` on the server's sendonly video m-sections (``offer_transport_cc``),
and only **probe padding** carries the extension. libwebrtc routes a packet
with it to the feedback path and every other packet to its REMB estimator
(``ReceiveSideCongestionController::OnReceivedPacket``), so the REMB the
estimate is built on goes on as before, and the publish m-sections (the
browser's own sending) are left alone: a browser that put the extension on
what it sends would expect feedback from us and fall back without it.

* ``TransportSequencer`` numbers the padding of one transport and keeps each
  packet's send time and size;
* ``parse_feedback`` reads an RTPFB FMT 15 message (run-length and status
  vector chunks, small and large receive deltas);
* ``QueueDelay`` matches arrivals with send times: the one-way delay of each
  padding packet up to an unknown constant, and how far it grew during a probe.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from media.sdp_text import add_extmap, joined, sections

__all__ = [
    "TRANSPORT_CC_ID",
    "TRANSPORT_CC_URI",
    "FeedbackError",
    "QueueDelay",
    "TransportFeedback",
    "TransportSequencer",
    "answered_transport_cc",
    "feedback_messages",
    "offer_transport_cc",
    "parse_feedback",
]

TRANSPORT_CC_URI: Final = (
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
)
#: The extension's id in our offers (aiortc uses 1-3, simulcast's rid 10).
TRANSPORT_CC_ID: Final = 5
#: RTCP transport-layer feedback, and transport-wide feedback's FMT.
_RTPFB: Final = 205
_FMT_TRANSPORT_CC: Final = 15
#: Units: reference time 64 ms, receive deltas 250 us.
_REFERENCE_UNIT_S: Final = 0.064
_DELTA_UNIT_S: Final = 0.00025
#: Send records kept per transport (padding only: a few hundred per probe).
_SENT_KEPT: Final = 4096


class FeedbackError(ValueError):
    """A transport-wide feedback message that does not parse."""


# -- SDP -----------------------------------------------------------------------------


def _media_payload_types(section: list[str]) -> list[str]:
    """The payload types of an m-section's codecs other than RTX."""
    types = []
    for line in section:
        if line.startswith("a=rtpmap:"):
            pt, _, name = line[len("a=rtpmap:") :].partition(" ")
            if not name.lower().startswith("rtx/"):
                types.append(pt)
    return types


def offer_transport_cc(sdp: str, skip_mids: Iterable[str] = ()) -> str:
    """``sdp`` with transport-wide feedback asked for on every sendonly video m-section
    (not those of ``skip_mids``: the publish ones), unchanged elsewhere."""
    skip = {f"a=mid:{mid}" for mid in skip_mids}
    parts = sections(sdp)
    for section in parts[1:]:
        if not section[0].startswith("m=video") or "a=sendonly" not in section:
            continue
        if skip.intersection(section) or any(TRANSPORT_CC_URI in line for line in section):
            continue
        add_extmap(section, TRANSPORT_CC_ID, TRANSPORT_CC_URI)
        for pt in _media_payload_types(section):
            fbs = [i for i, line in enumerate(section) if line.startswith(f"a=rtcp-fb:{pt} ")]
            if fbs:
                section.insert(fbs[-1] + 1, f"a=rtcp-fb:{pt} transport-cc")
    return joined(parts)


_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


def answered_transport_cc(sdp: str) -> dict[str, int]:
    """The mids (with the extension id) of the video m-sections whose answer kept
    transport-wide feedback: its header extension and ``transport-cc`` on a codec."""
    answered: dict[str, int] = {}
    for section in sections(sdp)[1:]:
        if not section[0].startswith("m=video"):
            continue
        mid = next((line[len("a=mid:") :] for line in section if line.startswith("a=mid:")), None)
        ext = None
        for line in section:
            match = _EXTMAP.match(line)
            if match and match.group(2) == TRANSPORT_CC_URI:
                ext = int(match.group(1))
        asked = any(
            line.startswith("a=rtcp-fb:") and line.endswith(" transport-cc") for line in section
        )
        if mid is not None and ext is not None and asked:
            answered[mid] = ext
    return answered


# -- feedback ------------------------------------------------------------------------


@dataclass(frozen=True)
class TransportFeedback:
    """One feedback message: per transport-wide sequence number (16 bits) the arrival
    time in seconds on the receiver's clock, or None (reported not received)."""

    media_ssrc: int
    feedback_count: int
    arrivals: list[tuple[int, float | None]]


def feedback_messages(compound: bytes) -> list[bytes]:
    """The payloads (from the sender SSRC on) of the transport-wide feedback messages
    in a compound RTCP packet; a malformed one ends the scan."""
    found = []
    pos = 0
    while pos + 4 <= len(compound):
        first, packet_type, length = struct.unpack_from("!BBH", compound, pos)
        end = pos + 4 + length * 4
        if first >> 6 != 2 or end > len(compound):
            break
        if packet_type == _RTPFB and first & 0x1F == _FMT_TRANSPORT_CC:
            found.append(compound[pos + 4 : end])
        pos = end
    return found


def parse_feedback(payload: bytes) -> TransportFeedback:
    """Parse an RTPFB FMT 15 payload (sender SSRC, media SSRC, then the FCI)."""
    if len(payload) < 16:
        raise FeedbackError(f"transport-wide feedback of {len(payload)} bytes: at least 16 needed")
    _sender, media_ssrc, base, count, ref_and_count = struct.unpack_from("!IIHHI", payload)
    reference = ref_and_count >> 8
    if reference & 0x800000:  # 24-bit signed
        reference -= 1 << 24
    pos = 16
    symbols: list[int] = []
    while len(symbols) < count:
        if pos + 2 > len(payload):
            raise FeedbackError(
                f"transport-wide feedback ends after {len(symbols)} of {count} packet statuses"
            )
        (chunk,) = struct.unpack_from("!H", payload, pos)
        pos += 2
        if chunk & 0x8000 == 0:  # run length: the same status, 13-bit run
            symbols += [(chunk >> 13) & 0x3] * (chunk & 0x1FFF)
        elif chunk & 0x4000 == 0:  # 14 one-bit symbols
            symbols += [(chunk >> (13 - i)) & 0x1 for i in range(14)]
        else:  # 7 two-bit symbols
            symbols += [(chunk >> (12 - 2 * i)) & 0x3 for i in range(7)]
    del symbols[count:]
    at = reference * _REFERENCE_UNIT_S
    arrivals: list[tuple[int, float | None]] = []
    for i, status in enumerate(symbols):
        seq = (base + i) & 0xFFFF
        if status == 0:
            arrivals.append((seq, None))
            continue
        if status == 1:
            if pos + 1 > len(payload):
                raise FeedbackError("transport-wide feedback ends inside its receive deltas")
            delta = payload[pos]
            pos += 1
        elif status == 2:
            if pos + 2 > len(payload):
                raise FeedbackError("transport-wide feedback ends inside its receive deltas")
            (delta,) = struct.unpack_from("!h", payload, pos)
            pos += 2
        else:
            raise FeedbackError(f"transport-wide feedback packet status {status} is reserved")
        at += delta * _DELTA_UNIT_S
        arrivals.append((seq, at))
    return TransportFeedback(media_ssrc, ref_and_count & 0xFF, arrivals)


# -- send side -----------------------------------------------------------------------


class TransportSequencer:
    """The transport-wide sequence numbers of one transport's padding, with each packet's
    send time (monotonic seconds) and size."""

    def __init__(self) -> None:
        self._next = 0
        self._sent: dict[int, tuple[float, int]] = {}
        self._order: deque[int] = deque()

    def next(self) -> int:
        """The number for the next packet (``sent`` records it once it is out)."""
        return self._next

    def sent(self, seq: int, at: float, size: int) -> None:
        self._next = (seq + 1) & 0xFFFF
        self._sent[seq] = (at, size)
        self._order.append(seq)
        while len(self._order) > _SENT_KEPT:
            self._sent.pop(self._order.popleft(), None)

    def lookup(self, seq: int) -> tuple[float, int] | None:
        return self._sent.get(seq)


@dataclass(frozen=True)
class DelaySample:
    sent_at: float
    #: Arrival minus send time: the one-way delay plus the clocks' unknown offset.
    delay_s: float
    size: int


class QueueDelay:
    """One subscriber's padding arrivals: how much the link's queue grew during a probe.

    The growth is the delay of the latest packets (the least of the last
    ``recent`` of them: one packet read late by a busy receiver is no queue)
    over the least delay of the probe's packets so far.
    """

    def __init__(self, recent: int = 4, kept: int = 512) -> None:
        self._recent = recent
        self.samples: deque[DelaySample] = deque(maxlen=kept)
        #: Padding packets the browser reported as not received, and feedback messages.
        self.lost = 0
        self.messages = 0
        #: Whether the subscriber's answer took transport-wide feedback on a video it
        #: receives: its feedback about probe padding will come (``seen``).
        self.negotiated = False
        self._lost_at: deque[float] = deque(maxlen=kept)
        #: The last answer of ``growth_s`` (the pacer asks every 10 ms; feedback comes
        #: every 50-250 ms): (since, messages then, growth).
        self._growth: tuple[float, int, float | None] | None = None

    def on_feedback(
        self, feedback: TransportFeedback, lookup: Callable[[int], tuple[float, int] | None]
    ) -> None:
        self.messages += 1
        for seq, arrival in feedback.arrivals:
            sent = lookup(seq)
            if sent is None:
                continue
            at, size = sent
            if arrival is None:
                self.lost += 1
                self._lost_at.append(at)
            else:
                self.samples.append(DelaySample(at, arrival - at, size))

    @property
    def seen(self) -> bool:
        """Whether the queue a probe builds shows here: feedback came, or will (it was
        negotiated; none comes before the first padding)."""
        return self.negotiated or self.messages > 0

    def growth_s(self, since: float) -> float | None:
        """How far the delay of packets sent since ``since`` grew (None: too few yet)."""
        cached = self._growth
        if cached is not None and cached[0] == since and cached[1] == self.messages:
            return cached[2]
        probe = [s.delay_s for s in self.samples if s.sent_at >= since]
        growth = None
        if len(probe) >= self._recent + 2:
            growth = min(probe[-self._recent :]) - min(probe)
        self._growth = (since, self.messages, growth)
        return growth

    def lost_since(self, since: float) -> int:
        """Padding packets sent since ``since`` that the browser reported missing."""
        return sum(1 for at in self._lost_at if at >= since)

    def received_since(self, since: float) -> int:
        return sum(1 for s in self.samples if s.sent_at >= since)
