"""Forwarded RTP packets written through an aiortc ``RTCRtpSender``, and their NACKs.

aiortc's sender only sends what its own encoder produced. ``OutboundRtp`` puts
already-packetized packets on the wire with the sender's SSRC, payload type and
header extensions, advances its RTCP sender-report counters as if aiortc had
sent them, keeps their history so that aiortc's own ``_retransmit`` can answer
the subscriber's NACKs within the resend rules below (answered every time, on a
full link they were 2-7 Mbit/s into 300 kbit/s), counts the packets NACKed for
the first time, takes the publisher's own losses out of the subscriber's loss
figure (``UpstreamGaps``), and sends probe padding over RTX as libwebrtc does. All of that
is the sender's private state, which ``media.aiortc_internals`` lists for its
audit (``_SENDER_ATTRS``, ``_TRANSCEIVER_ATTRS``); importing this module runs
that module's version gate.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass
from struct import pack
from typing import Any, Final

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from kernel.taskset import TaskSet
from media.aiortc_internals import _ParkedTrack, extension_ids
from media.datagram_path import DatagramPath
from media.pacer import LinkPacer
from media.rtp_header import HeaderWriter, RtpView, abs_send_time_of, ntp_of
from media.transport_cc import TRANSPORT_CC_URI, QueueDelay

#: Called with a subscriber's REMB for one of our senders: (bit/s, the SSRCs it covers).
RembListener = Callable[[int, "tuple[int, ...]"], None]
#: Called with one report block for one of our senders: (fraction lost 0..1, RTT s or None).
ReportListener = Callable[[float, "float | None"], None]
#: Called with the number of packets one NACK of the subscriber asks for the first time
#: (a browser repeats its NACKs for a missing packet every round trip: those are old news).
NackListener = Callable[[int], None]

#: What a sender keeps of each forwarded packet for NACKs: (sequence number, timestamp,
#: packet, NTP time it was sent).
_HistoryEntry = tuple[int, int, RtpView, int]
#: A packet is resent at most once per round trip (at least this long, in seconds)...
_RESEND_MIN_INTERVAL_S: Final = 0.05
#: ... and not at all once older than this: the subscriber's jitter buffer gave up on it.
_RESEND_MAX_AGE_S: Final = 1.0
#: Retransmissions may use at most this share of the bytes the sender sends (token
#: bucket, ``_RESEND_BURST`` bytes deep): on a full link every resent packet is lost
#: again and asked for again, and unbounded answers were 2-7 Mbit/s into a 300 kbit/s
#: link (mediasoup and libwebrtc bound them alike).
_RESEND_SHARE: Final = 0.5
#: Padding per padding-only probe packet: the most one RTP padding length byte can say.
_PADDING_BYTES: Final = 255
#: Probe padding copies the newest of this many packets, sent within this long.
_PAD_RECENT_PACKETS: Final = 16
_PAD_RECENT_S: Final = 0.5
_RESEND_BURST: Final = 48_000
#: ``_RESEND_MAX_AGE_S`` in NTP units (1/2**32 s), the unit of the history's send times.
_RESEND_MAX_AGE_NTP: Final = int(_RESEND_MAX_AGE_S * (1 << 32))


def _within_resend_age(sent_ntp: int, now_ntp: int) -> bool:
    """Whether a packet sent at NTP time ``sent_ntp`` is at most ``_RESEND_MAX_AGE_S`` old.

    The one age rule of both counting NACKs (``OutboundRtp._first_nacks``: a NACK for
    an older packet is not news) and answering them (nor is it worth resending).
    """
    return now_ntp - sent_ntp <= _RESEND_MAX_AGE_NTP


class ReportIntervals:
    """Which receiver report blocks for one sender speak of the link now.

    A browser reports on a stream only while packets come: the first block after a
    paused video is resumed covers the whole pause and the losses before it (at
    300 kbit/s, 8 % "lost" one second after a camera was resumed on a link lifted a
    few seconds before; the camera went back and resuming took 10 s). A block that
    came over ``stale_factor`` times the usual interval after the last one (and over
    ``stale_min_s``: audio is reported every 5 s) is not counted.
    """

    def __init__(self, stale_factor: float = 2.5, stale_min_s: float = 2.5) -> None:
        self._factor = stale_factor
        self._min_s = stale_min_s
        self._last: float | None = None
        self._interval: float | None = None

    def fresh(self, now: float) -> bool:
        last, self._last = self._last, now
        if last is None:
            return True
        gap = now - last
        usual = self._interval
        stale = usual is not None and gap > max(self._min_s, self._factor * usual)
        if not stale:
            self._interval = gap if usual is None else 0.8 * usual + 0.2 * gap
        return not stale


class UpstreamGaps:
    """Sequence numbers this sender skipped (packets lost before they reached us), so
    that a subscriber's loss figure is about their own link.

    A packet the publisher's uplink lost is a gap in what we forward, and the
    subscriber's receiver report counts it as lost like any other: when a resident's
    uplink was limited to 500 kbit/s, the counselor and the interpreter on loopback
    reported the resident's losses, and their own video was cut to 320x240 for it.
    ``downlink_loss`` takes the report's cumulative figures (packets lost, highest
    sequence number) and removes the gaps we sent within the same interval.
    """

    __slots__ = ("_events", "_ext", "_gaps", "_last", "_prev", "_trimmed")

    def __init__(self) -> None:
        self._last: int | None = None
        self._ext = 0  # extended highest sequence number sent
        self._gaps = 0
        #: (extended sequence number after a gap, gaps sent up to and including it).
        self._events: list[tuple[int, int]] = []
        #: Gaps up to the last event trimmed from ``_events`` (the base for older ones).
        self._trimmed = 0
        #: The last report's (extended highest, cumulative lost, gaps up to it).
        self._prev: tuple[int, int, int] | None = None

    def sent(self, seq: int) -> None:
        last = self._last
        if last is None:
            self._last, self._ext = seq, seq
            if self._prev is None:  # the first report counts from here
                self._prev = (seq - 1, 0, 0)
            return
        delta = (seq - last) & 0xFFFF
        if delta == 0:
            return  # a repeat
        if delta >= 0x8000:  # a late packet (the publisher's resend): a gap filled
            if self._gaps > 0:
                self._gaps -= 1
                self._events.append((self._ext, self._gaps))
            return
        self._last = seq
        self._ext += delta
        if delta > 1:
            self._gaps += delta - 1
            self._events.append((self._ext, self._gaps))
            if len(self._events) > 4096:  # no reports for a long while: keep the newest
                self._trimmed = self._events[2047][1]
                del self._events[:2048]

    def _gaps_upto(self, ext: int) -> int:
        events = self._events
        i = bisect.bisect_right(events, (ext, 1 << 62))
        return events[i - 1][1] if i else self._trimmed

    def downlink_loss(self, fraction_lost: float, packets_lost: int, highest: int) -> float:
        """The share of packets lost since the last report on the subscriber's side."""
        gaps = self._gaps_upto(highest)
        prev = self._prev
        self._prev = (highest, packets_lost, gaps)
        # Reports only move forward: what is up to this one is a base from now on.
        events = self._events
        i = bisect.bisect_right(events, (highest, 1 << 62))
        if i:
            self._trimmed = events[i - 1][1]
            del events[:i]
        if prev is None:
            return fraction_lost  # a report before anything was sent
        expected = highest - prev[0]
        if expected <= 0 or expected > 0x8000:
            return fraction_lost  # no packets since, or a restart: as reported
        skipped = gaps - prev[2]
        if skipped <= 0:
            return fraction_lost
        lost = packets_lost - prev[1] - skipped
        return max(0.0, lost) / max(1, expected - skipped)


@dataclass
class _SendState:
    payload_type: int
    codec: RTCRtpCodecParameters
    mid: str | None
    writer: HeaderWriter
    transport: Any
    path: DatagramPath
    history: list[_HistoryEntry | None]


class OutboundRtp:
    """Writes forwarded RTP packets through one ``RTCRtpSender``.

    SSRC, payload type and header extensions are the sender's; NACKs are
    answered from this sender's history (over RTX when negotiated, by aiortc's
    own ``_retransmit``), and the sender-report counters advance as if aiortc
    had sent the packet.
    """

    def __init__(
        self, sender: RTCRtpSender, transceiver: RTCRtpTransceiver, *, tasks: TaskSet
    ) -> None:
        self.sender = sender
        self._transceiver = transceiver
        self._tasks = tasks
        self._state: _SendState | None = None
        self._remb_listener: RembListener | None = None
        self._report_listener: ReportListener | None = None
        self._nack_listener: NackListener | None = None
        #: Packets NACKed so far (sequence number -> when first), to count each once.
        self._nacked: dict[int, float] = {}
        #: The last sequence number sent, and how far back probe padding copies from.
        self._last_seq = 0
        self._pad_back = 0
        self._feedback_installed = False
        #: NACKed packets resent, and NACKs not answered (too soon, too old, over budget).
        self.resent = 0
        self.resends_refused = 0
        #: The subscriber link's pacer (``media.pacer``), when it paces; audio only counts.
        self.pacer: LinkPacer | None = None
        self._audio = sender.kind == "audio"
        self.upstream_gaps = UpstreamGaps()
        self.report_intervals = ReportIntervals()
        #: The transport-wide sequence number's extension id when the subscriber's answer
        #: took it (``media.transport_cc``): probe padding then carries one, and the
        #: browser's feedback about it goes to ``queue_delay``.
        self.transport_cc_id: int | None = None
        self.queue_delay: QueueDelay | None = None
        self._padding_map: tuple[int, HeaderExtensionsMap] | None = None
        if not isinstance(sender.track, _ParkedTrack):
            sender.replaceTrack(_ParkedTrack(sender.kind))

    @property
    def ssrc(self) -> int:
        return self.sender._ssrc

    def negotiated_codec(self) -> RTCRtpCodecParameters | None:
        """The sender's primary codec, once negotiation picked one."""
        codecs: list[RTCRtpCodecParameters] = self._transceiver._codecs
        return codecs[0] if codecs else None

    def on_keyframe_request(self, callback: Callable[[], None] | None) -> None:
        """Route the subscriber's PLI/FIR for this sender to ``callback``."""
        s: Any = self.sender
        s._send_keyframe = callback if callback is not None else (lambda: None)

    def on_feedback(
        self,
        remb: RembListener | None,
        report: ReportListener | None,
        nack: NackListener | None = None,
    ) -> None:
        """Hand the subscriber's REMB, its report blocks and its NACKs for this sender to
        listeners.

        aiortc's own handling (RTT, statistics, NACK, PLI) runs first, except
        that NACKs are counted before they are answered; the RTT passed on is
        aiortc's smoothed one, from our sender reports.
        """
        self._remb_listener = remb
        self._report_listener = report
        self._nack_listener = nack
        if self._feedback_installed:
            return
        self._feedback_installed = True
        s: Any = self.sender
        original = s._handle_rtcp_packet

        async def _handle_rtcp_packet(packet: Any) -> None:
            if (
                isinstance(packet, RtcpRtpfbPacket)
                and packet.fmt == RTCP_RTPFB_NACK
                and packet.media_ssrc == s._ssrc
                and self._nack_listener is not None
            ):
                fresh = self._first_nacks(packet.lost)
                if fresh:
                    self._nack_listener(fresh)
            await original(packet)
            if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                on_report = self._report_listener
                if on_report is not None:
                    for block in packet.reports:
                        if block.ssrc == s._ssrc:
                            lost = self.upstream_gaps.downlink_loss(
                                block.fraction_lost / 256,
                                block.packets_lost,
                                block.highest_sequence,
                            )
                            if self.report_intervals.fresh(time.monotonic()):
                                on_report(lost, s._RTCRtpSender__rtt)
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                on_remb = self._remb_listener
                if on_remb is not None:
                    try:
                        bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    except ValueError:
                        return
                    if s._ssrc in ssrcs:
                        on_remb(bitrate, tuple(ssrcs))

        s._handle_rtcp_packet = _handle_rtcp_packet

    def _first_nacks(self, lost: list[int]) -> int:
        """How many of ``lost`` are asked for the first time, of packets sent in the
        last second."""
        state = self._state
        if state is None:
            return 0
        now = time.monotonic()
        nacked = self._nacked
        if len(nacked) > RTP_HISTORY_SIZE:
            for seq in [k for k, t in nacked.items() if now - t > _RESEND_MAX_AGE_S]:
                del nacked[seq]
        now_ntp = ntp_of(time.time())
        fresh = 0
        for seq in lost:
            entry = state.history[seq % RTP_HISTORY_SIZE]
            if (
                entry is None
                or entry[0] != seq
                or not _within_resend_age(entry[3], now_ntp)
                or seq in nacked
            ):
                continue
            nacked[seq] = now
            fresh += 1
        return fresh

    def sent_counters(self) -> tuple[int, int]:
        """Bytes and packets the sender's transport has sent so far (all its senders)."""
        dtls: Any = self.sender.transport
        if dtls is None:
            return (0, 0)
        return dtls._RTCDtlsTransport__tx_bytes, dtls._RTCDtlsTransport__tx_packets

    def stream_counters(self) -> tuple[int, int, int]:
        """(SSRC, payload octets, packets) this sender has sent (its sender-report counters)."""
        s: Any = self.sender
        return s._ssrc, s._RTCRtpSender__octet_count, s._RTCRtpSender__packet_count

    def _ready(self) -> _SendState | None:
        s: Any = self.sender
        if not s._RTCRtpSender__started:
            return None
        codec = self.negotiated_codec()
        if codec is None or codec.payloadType is None:
            return None
        mid: str | None = s._RTCRtpSender__mid
        ids = extension_ids(s._RTCRtpSender__rtp_header_extensions_map)
        transport = s.transport
        history: list[_HistoryEntry | None] = [None] * RTP_HISTORY_SIZE
        if self._state is None:
            self._answer_nacks_from(history)
        else:
            history = self._state.history
        self._state = _SendState(
            payload_type=codec.payloadType,
            codec=codec,
            mid=mid,
            writer=HeaderWriter(ids, mid, codec.payloadType, s._ssrc),
            transport=transport,
            path=DatagramPath.of(transport, self._tasks),
            history=history,
        )
        return self._state

    def _answer_nacks_from(self, history: list[_HistoryEntry | None]) -> None:
        """Make aiortc's ``_retransmit`` find forwarded packets (built only when NACKed),
        each at most once per round trip, none older than ``_RESEND_MAX_AGE_S``, within
        ``_RESEND_SHARE`` of what this sender sends."""
        s: Any = self.sender
        aiortc_history: dict[int, RtpPacket] = s._RTCRtpSender__rtp_history
        original = s._retransmit
        resent_at: dict[int, float] = {}
        budget = {"tokens": float(_RESEND_BURST), "octets": 0}

        def allowed(entry: _HistoryEntry) -> bool:
            seq, _ts, view, sent_ntp = entry
            now = time.monotonic()
            if not _within_resend_age(sent_ntp, ntp_of(time.time())):
                return False
            rtt: float | None = s._RTCRtpSender__rtt
            last = resent_at.get(seq)
            if last is not None and now - last < max(rtt or 0.0, _RESEND_MIN_INTERVAL_S):
                return False
            octets: int = s._RTCRtpSender__octet_count
            tokens = budget["tokens"] + (octets - budget["octets"]) * _RESEND_SHARE
            budget["octets"] = octets
            size = len(view.payload)
            if tokens < size:
                budget["tokens"] = tokens
                return False
            budget["tokens"] = min(tokens - size, _RESEND_BURST)
            if len(resent_at) > 2 * RTP_HISTORY_SIZE:
                for old in [k for k, t in resent_at.items() if now - t > _RESEND_MAX_AGE_S]:
                    del resent_at[old]
            resent_at[seq] = now
            return True

        async def _retransmit(sequence_number: int) -> None:
            entry = history[sequence_number % RTP_HISTORY_SIZE]
            state = self._state
            if entry is not None and entry[0] == sequence_number and state is not None:
                if not allowed(entry):
                    self.resends_refused += 1
                    return
                self.resent += 1
                seq, ts, view, _sent = entry
                packet = RtpPacket(
                    payload_type=state.payload_type,
                    marker=view.marker,
                    sequence_number=seq,
                    timestamp=ts,
                    ssrc=s._ssrc,
                    payload=view.payload,
                )
                packet.extensions.mid = state.mid
                packet.extensions.abs_send_time = abs_send_time_of(ntp_of(time.time()))
                packet.extensions.audio_level = view.audio_level
                aiortc_history[seq % RTP_HISTORY_SIZE] = packet
            await original(sequence_number)

        s._retransmit = _retransmit

    def send_padding(self, nbytes: int) -> int:
        """About ``nbytes`` of probe padding over RTX; the bytes sent, 0 when RTX was not
        negotiated or the sender cannot send yet.

        As libwebrtc pads: copies of the packets sent in the last
        ``_PAD_RECENT_S`` (the browser counts them in its bandwidth estimate and
        drops them as duplicates, or repairs a loss with them; ~1,100 bytes a
        packet where padding-only packets carry 255), padding-only packets when
        there are none (a paused video).
        """
        state = self._state
        s: Any = self.sender
        if state is None or state.transport is not s.transport:
            state = self._ready()
            if state is None:
                return 0
        rtx_payload_type: int | None = s._RTCRtpSender__rtx_payload_type
        if rtx_payload_type is None:
            return 0
        extensions = s._RTCRtpSender__rtp_header_extensions_map
        numbered = self._numbered_extensions(state)
        if numbered is not None:
            extensions = numbered
        sequencer = state.path.transport_cc
        history = state.history
        recent_after = ntp_of(time.time()) - int(_PAD_RECENT_S * (1 << 32))
        sent = 0
        while sent < nbytes:
            sequence_number: int = s._RTCRtpSender__rtx_sequence_number
            entry = None
            for _ in range(_PAD_RECENT_PACKETS):  # the next recent packet, newest first
                back = self._pad_back
                self._pad_back = (back + 1) % _PAD_RECENT_PACKETS
                seq = (self._last_seq - back) & 0xFFFF
                candidate = history[seq % RTP_HISTORY_SIZE]
                if candidate is not None and candidate[0] == seq and candidate[3] >= recent_after:
                    entry = candidate
                    break
                self._pad_back = 0
            if entry is not None:
                seq, ts, view, _sent = entry
                packet = RtpPacket(
                    payload_type=rtx_payload_type,
                    marker=view.marker,
                    sequence_number=sequence_number,
                    timestamp=ts,
                    ssrc=s._rtx_ssrc,
                    payload=pack("!H", seq) + view.payload,
                )
            else:
                packet = RtpPacket(
                    payload_type=rtx_payload_type,
                    sequence_number=sequence_number,
                    timestamp=s._RTCRtpSender__rtp_timestamp,
                    ssrc=s._rtx_ssrc,
                )
                packet.padding_size = _PADDING_BYTES
            packet.extensions.mid = state.mid
            packet.extensions.abs_send_time = abs_send_time_of(ntp_of(time.time()))
            if numbered is not None:
                packet.extensions.transport_sequence_number = sequencer.next()
            plain = packet.serialize(extensions)
            if not state.path.send_rtp(plain):
                break
            if numbered is not None:
                sequencer.sent(sequencer.next(), time.monotonic(), len(plain))
            s._RTCRtpSender__rtx_sequence_number = (sequence_number + 1) & 0xFFFF
            sent += len(plain)
        return sent

    def _numbered_extensions(self, state: _SendState) -> HeaderExtensionsMap | None:
        """The header extensions of padding with a transport-wide sequence number, when
        the answer took it; the browser's feedback then goes to ``queue_delay``."""
        ext_id = self.transport_cc_id
        queue = self.queue_delay
        if ext_id is None or queue is None:
            return None
        path = state.path
        if path.feedback_listener is None:
            lookup = path.transport_cc.lookup
            path.feedback_listener = lambda feedback: queue.on_feedback(feedback, lookup)
        cached = self._padding_map
        if cached is not None and cached[0] == ext_id:
            return cached[1]
        negotiated: list[RTCRtpHeaderExtensionParameters] = self._transceiver._headerExtensions
        numbered = HeaderExtensionsMap()
        numbered.configure(
            RTCRtpParameters(
                headerExtensions=[
                    *(e for e in negotiated if e.uri != TRANSPORT_CC_URI),
                    RTCRtpHeaderExtensionParameters(id=ext_id, uri=TRANSPORT_CC_URI),
                ]
            )
        )
        self._padding_map = (ext_id, numbered)
        return numbered

    def send(
        self, packet: RtpView, sequence_number: int, timestamp: int, abs_send_time: int, ntp: int
    ) -> bool:
        """Send ``packet``'s payload with this sender's header; False if it cannot send yet.

        ``abs_send_time`` and ``ntp`` are the send time, read once per received
        packet for all its subscribers. With a ``pacer``, a video packet the link's
        bucket has no room for waits in its queue (True all the same: it is on its
        way, in order) and is stamped with the time it leaves.
        """
        state = self._state
        s: Any = self.sender
        if state is None or state.transport is not s.transport:
            state = self._ready()
            if state is None:
                return False
        pacer = self.pacer
        if pacer is not None and pacer.rate_bps is not None:
            size = len(packet.payload)
            if self._audio:
                pacer.spend(size)
            elif not pacer.admit(size):
                pacer.hold(lambda: self._send_late(packet, sequence_number, timestamp, ntp), size)
                return True
        return self._write(state, packet, sequence_number, timestamp, abs_send_time, ntp)

    def _send_late(
        self, packet: RtpView, sequence_number: int, timestamp: int, forwarded_ntp: int
    ) -> None:
        """A packet the pacer held, now: stamped with this moment's send time; the sender
        report keeps pairing its RTP timestamp with when it was forwarded (as audio's,
        which never waits: lip sync)."""
        state = self._state
        s: Any = self.sender
        if state is None or state.transport is not s.transport:
            state = self._ready()
            if state is None:
                return
        ntp = ntp_of(time.time())
        self._write(
            state, packet, sequence_number, timestamp, abs_send_time_of(ntp), ntp, forwarded_ntp
        )

    def _write(
        self,
        state: _SendState,
        packet: RtpView,
        sequence_number: int,
        timestamp: int,
        abs_send_time: int,
        ntp: int,
        report_ntp: int | None = None,
    ) -> bool:
        s: Any = self.sender
        data = state.writer.write(
            packet.marker, sequence_number, timestamp, abs_send_time, packet.audio_level,
            packet.payload,
        )  # fmt: skip
        if not state.path.send_rtp(data):
            return False
        self._last_seq = sequence_number
        self.upstream_gaps.sent(sequence_number)
        state.history[sequence_number % RTP_HISTORY_SIZE] = (
            sequence_number, timestamp, packet, ntp
        )  # fmt: skip
        s._RTCRtpSender__ntp_timestamp = ntp if report_ntp is None else report_ntp
        s._RTCRtpSender__rtp_timestamp = timestamp
        s._RTCRtpSender__octet_count += len(packet.payload)
        s._RTCRtpSender__packet_count += 1
        return True
