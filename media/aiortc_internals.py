"""Every touch of aiortc's private attributes, in one place.

Forwarding encoded media at the RTP level needs three things aiortc does not
expose publicly:

* on a receiver, the parsed RTP packets (after SRTP, RTX unwrapping and NACK
  generation) *instead of* the jitter buffer and decoder thread;
* on a sender, a way to put an already-packetized RTP packet on the wire with
  the sender's SSRC, payload type, header extensions, retransmission history
  and RTCP sender-report counters;
* the negotiated codecs of a transceiver, and a hook on a sender's keyframe
  request (aiortc only sets a flag that the pre-encoded path ignores);
* a datagram path without aiortc's per-packet queue, task wake-up and
  coroutine chain (``DatagramPath``): the forwarding hot path runs inside the
  socket's callback, which also touches aioice's connection and protocols.

This module was written against aiortc 1.16 and aioice 0.13 (``SUPPORTED_AIORTC``,
``SUPPORTED_AIOICE``). Importing it under any other version raises, and
``tests/media/test_aiortc_internals.py`` checks every attribute it relies on, so
an upgrade fails loudly instead of silently decoding again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from struct import pack
from typing import Any, Final

import aioice.ice as aioice_ice
import aiortc
import pylibsrtp
from aioice.ice import StunProtocol
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import clock as aiortc_clock
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from kernel.taskset import TaskSet
from media.errors import MediaError
from media.remb_feed import GroupedRembFeed
from media.rtp_header import (
    ExtensionIds,
    HeaderWriter,
    RtpView,
    abs_send_time_of,
    ntp_of,
    parse_rtp,
)

logger = logging.getLogger(__name__)

#: The aiortc versions (inclusive lower, exclusive upper) this module was written for.
SUPPORTED_AIORTC: Final = ((1, 16), (1, 17))
#: The same for aioice, whose connection and protocols ``DatagramPath`` uses.
SUPPORTED_AIOICE: Final = ((0, 13), (0, 14))


class AiortcVersionError(MediaError):
    """aiortc is not a version whose internals this module knows."""


def _parse_version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_aiortc_version(installed: str | None = None, *, package: str = "aiortc") -> None:
    """Raise unless the installed aiortc (or aioice) is inside its ``SUPPORTED_*`` range."""
    text = installed if installed is not None else version(package)
    low, high = SUPPORTED_AIORTC if package == "aiortc" else SUPPORTED_AIOICE
    if not (low <= _parse_version(text) < high):
        raise AiortcVersionError(
            f"media.aiortc_internals was written for {package} >={low[0]}.{low[1]},"
            f"<{high[0]}.{high[1]}, found {text}; re-check every private attribute "
            "it uses before widening the range"
        )


check_aiortc_version()
check_aiortc_version(package="aioice")

# Name-mangled private attributes used below, listed so a test can check them all.
_RECEIVER_ATTRS: Final = (
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__nack_generator",
    "_RTCRtpReceiver__remote_bitrate_estimator",
    "_RTCRtpReceiver__active_ssrc",
    "_RTCRtpReceiver__rtcp_ssrc",
    "_enabled",
    "_handle_rtp_packet",
)
_SENDER_ATTRS: Final = (
    "_RTCRtpSender__started",
    "_RTCRtpSender__mid",
    "_RTCRtpSender__rtp_header_extensions_map",
    "_RTCRtpSender__rtp_history",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
    "_RTCRtpSender__rtt",
    "_handle_rtcp_packet",
    "_send_keyframe",
    "_retransmit",
    "_ssrc",
)
_TRANSCEIVER_ATTRS: Final = ("_codecs",)
_DTLS_ATTRS: Final = (
    "_rx_srtp",
    "_tx_srtp",
    "_state",
    "_rtp_router",
    "_rtp_header_extensions_map",
    "_RTCDtlsTransport__rx_bytes",
    "_RTCDtlsTransport__rx_packets",
    "_RTCDtlsTransport__tx_bytes",
    "_RTCDtlsTransport__tx_packets",
)
_ICE_CONNECTION_ATTRS: Final = ("data_received", "_nominated", "_protocols", "_queue")


def missing_attributes(
    receiver: RTCRtpReceiver, sender: RTCRtpSender, transceiver: RTCRtpTransceiver
) -> list[str]:
    """Names this module relies on that the given live objects lack (empty when fine)."""
    missing = [f"RTCRtpReceiver.{a}" for a in _RECEIVER_ATTRS if not hasattr(receiver, a)]
    missing += [f"RTCRtpSender.{a}" for a in _SENDER_ATTRS if not hasattr(sender, a)]
    missing += [f"RTCRtpTransceiver.{a}" for a in _TRANSCEIVER_ATTRS if not hasattr(transceiver, a)]
    dtls: Any = receiver.transport
    missing += [f"RTCDtlsTransport.{a}" for a in _DTLS_ATTRS if not hasattr(dtls, a)]
    if not hasattr(dtls._rtp_header_extensions_map, "_HeaderExtensionsMap__ids"):
        missing.append("HeaderExtensionsMap._HeaderExtensionsMap__ids")
    connection = getattr(dtls.transport, "_connection", None)
    if connection is None:
        missing.append("RTCIceTransport._connection")
    else:
        missing += [
            f"aioice.Connection.{a}" for a in _ICE_CONNECTION_ATTRS if not hasattr(connection, a)
        ]
    if not isinstance(getattr(aioice_ice.CandidatePair, "remote_addr", None), property):
        missing.append("aioice.CandidatePair.remote_addr")
    for name in ("StreamStatistics", "NackGenerator"):
        if not hasattr(aiortc.rtcrtpreceiver, name):
            missing.append(f"aiortc.rtcrtpreceiver.{name}")
    return missing


#: Minimum spacing of REMB feedback per receiver (the estimator may update more often).
REMB_INTERVAL_MS: Final = 250

#: Called with a subscriber's REMB for one of our senders: (bit/s, the SSRCs it covers).
RembListener = Callable[[int, "tuple[int, ...]"], None]
#: Called with one report block for one of our senders: (fraction lost 0..1, RTT s or None).
ReportListener = Callable[[float, "float | None"], None]
#: Called with the number of packets one NACK of the subscriber asks for the first time
#: (a browser repeats its NACKs for a missing packet every round trip: those are old news).
NackListener = Callable[[int], None]

#: Called with each received media packet (RTX already unwrapped) and its arrival in ms
#: on aiortc's clock. Synchronous: on the fast path it runs inside the socket's callback.
PacketSink = Callable[[RtpView, int], None]

_NTP_UNIX_OFFSET_MS: Final = 2_208_988_800_000
_DTLS_CONNECTED: Final = DtlsState.CONNECTED


def now_ms() -> int:
    """aiortc's ``clock.current_ms()`` (ms since the NTP epoch), without building datetimes."""
    return int(time.time() * 1000) + _NTP_UNIX_OFFSET_MS


class DatagramPath:
    """The RTP datagrams of one DTLS transport, without aiortc's queue and coroutines.

    aiortc moves every received datagram through an ``asyncio.Queue`` to the DTLS
    transport's task (a wake-up per packet, queued behind everything else the
    loop has ready), tries to parse it as STUN first, builds an ``RtpPacket``
    and awaits five coroutine layers per send. Here an SRTP datagram is
    unprotected, parsed (``media.rtp_header``) and handed to its receiver's
    ``ReceiveHook`` inside the socket's callback, and a send is SRTP protect plus
    the socket write, synchronously. DTLS, STUN and RTCP keep aiortc's path.

    One per DTLS transport, kept on the transport (``DatagramPath.of``). Receivers
    with no registered sink keep aiortc's handling (``fallbacks`` counts them).
    """

    def __init__(self, dtls: Any, tasks: TaskSet) -> None:
        self._dtls = dtls
        self._tasks = tasks
        self._router: Any = dtls._rtp_router
        self._ids: Any = dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids
        self._connection: Any = dtls.transport._connection
        self._nominated: dict[int, Any] = self._connection._nominated
        #: Datagrams still waiting in aioice's queue for aiortc's task (asyncio.Queue's deque).
        self._queued: Any = self._connection._queue._queue
        self._sinks: dict[Any, PacketSink] = {}
        #: (ssrc << 7 | payload type) -> sink, for packets aiortc's router already placed.
        self._routes: dict[int, PacketSink] = {}
        self._pair: Any = None
        self._addr: tuple[str, int] | None = None
        self._direct = False
        self._patched: set[int] = set()
        self._original_data_received = self._connection.data_received
        self._connection.data_received = self._data_received
        self._patch_protocols()
        #: RTP packets that took aiortc's path because their receiver has no sink.
        self.fallbacks = 0

    @classmethod
    def of(cls, dtls: Any, tasks: TaskSet) -> DatagramPath:
        """The path of ``dtls`` (an ``RTCDtlsTransport``), installed on first use."""
        path: DatagramPath | None = getattr(dtls, "_seoulbridge_datagram_path", None)
        if path is None:
            path = cls(dtls, tasks)
            dtls._seoulbridge_datagram_path = path
        return path

    def register(self, receiver: RTCRtpReceiver, sink: PacketSink) -> None:
        self._sinks[receiver] = sink
        self._routes.clear()

    def unregister(self, receiver: RTCRtpReceiver) -> None:
        self._sinks.pop(receiver, None)
        self._routes.clear()

    # -- receive ---------------------------------------------------------------------

    def _patch_protocols(self) -> None:
        """Route SRTP straight from each UDP protocol, skipping aioice's STUN parse attempt."""
        for protocol in self._connection._protocols:
            if type(protocol) is not StunProtocol or id(protocol) in self._patched:
                continue
            self._patched.add(id(protocol))
            original = protocol.datagram_received
            component: int = protocol.local_candidate.component

            def datagram_received(
                data: bytes, addr: Any, original: Any = original, component: int = component
            ) -> None:
                if 127 < data[0] < 192:
                    self._data_received(data, component)
                else:
                    original(data, addr)

            patched: Any = protocol
            patched.datagram_received = datagram_received

    def _data_received(self, data: bytes, component: int) -> None:
        # While aiortc's task still has datagrams queued, queue behind them: in order.
        if 127 < data[0] < 192 and not 191 < data[1] < 224 and not self._queued:  # SRTP
            srtp = self._dtls._rx_srtp
            if srtp is not None:
                self._receive_rtp(srtp, data)
                return
        if len(self._patched) != len(self._connection._protocols):
            self._patch_protocols()
        self._original_data_received(data, component)

    def _receive_rtp(self, srtp: Any, data: bytes) -> None:
        arrival_ms = now_ms()
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return
        dtls = self._dtls
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        view = parse_rtp(plain, self._ids)
        if view is None:
            return
        key = (view.ssrc << 7) | view.payload_type
        sink = self._routes.get(key)
        if sink is None:
            sink = self._route(view, key, plain, arrival_ms)
            if sink is None:
                return
        try:
            sink(view, arrival_ms)
        except Exception:
            logger.exception("RTP packet handling failed: %r", view)

    def _route(self, view: RtpView, key: int, plain: bytes, arrival_ms: int) -> PacketSink | None:
        """aiortc's routing (SSRC and payload type) for a packet not seen before."""
        receiver = self._router.route_rtp(view)
        if receiver is None:
            return None
        sink = self._sinks.get(receiver)
        if sink is not None:
            self._routes[key] = sink
            return sink
        if not self._tasks.closed:  # a receiver with no hook: aiortc's own handling
            self.fallbacks += 1
            packet = RtpPacket.parse(plain, self._dtls._rtp_header_extensions_map)
            self._tasks.spawn(
                receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_ms), name="rtp"
            )
        return None

    # -- send ------------------------------------------------------------------------

    def send_rtp(self, plain: bytes) -> bool:
        """Protect and send one RTP packet; False when the transport cannot send."""
        dtls = self._dtls
        if dtls._state is not _DTLS_CONNECTED:
            return False
        return self._write(dtls._tx_srtp.protect(plain))

    def send_rtcp(self, plain: bytes) -> bool:
        """Protect and send one compound RTCP packet; False when the transport cannot send."""
        dtls = self._dtls
        if dtls._state is not _DTLS_CONNECTED:
            return False
        return self._write(dtls._tx_srtp.protect_rtcp(plain))

    def _write(self, data: bytes) -> bool:
        pair = self._nominated.get(1)
        if pair is None:
            return False
        if pair is not self._pair:
            self._pair = pair
            self._addr = pair.remote_addr
            self._direct = type(pair.protocol) is StunProtocol
        if self._direct:
            pair.protocol.transport.sendto(data, self._addr)
        else:  # TURN relay: aioice wraps the datagram (and may await a channel binding)
            self._tasks.spawn(pair.protocol.send_data(data, self._addr), name="relayed send")
        dtls = self._dtls
        dtls._RTCDtlsTransport__tx_bytes += len(data)
        dtls._RTCDtlsTransport__tx_packets += 1
        return True


class ReceiveHook:
    """Replaces a receiver's RTP path: statistics, RTX, NACK, REMB, then ``sink``.

    The jitter buffer and the decoder thread never see a packet, so no decoder is
    ever created for this receiver. Packets arrive on the ``DatagramPath`` of the
    receiver's transport; the first ones (before the path knows this receiver)
    come through aiortc's own ``_handle_rtp_packet``, which this hook replaces.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        sink: PacketSink | None = None,
        *,
        tasks: TaskSet,
        estimate_bandwidth: bool = True,
    ) -> None:
        self._receiver = receiver
        self._tasks = tasks
        self.sink = sink
        self.media_ssrc: int | None = None
        #: Issue 10's seam: when set, REMB to the publisher is at most this many bit/s.
        self.remb_cap: Callable[[], int | None] | None = None
        #: Called with padding-only packets on a media SSRC (a publisher without RTX pads
        #: there): the forwarder closes the gap they leave in each subscriber's numbering.
        self.padding_sink: PacketSink | None = None
        r: Any = receiver
        self._codecs: dict[int, RTCRtpCodecParameters] = r._RTCRtpReceiver__codecs
        self._rtx_ssrc: dict[int, int] = r._RTCRtpReceiver__rtx_ssrc
        self._streams: dict[int, Any] = r._RTCRtpReceiver__remote_streams
        self._active: dict[int, Any] = r._RTCRtpReceiver__active_ssrc
        # One NACK state per SSRC: a simulcast publisher sends several sequence spaces.
        self._nack_enabled = r._RTCRtpReceiver__nack_generator is not None
        self._nacks: dict[int, Any] = {}
        #: payload type -> (codec, the RTX packet's original payload type or None)
        self._kinds: dict[int, tuple[RTCRtpCodecParameters, int | None]] = {}
        # REMB drives a browser publisher's bitrate; measurement clients skip it.
        estimator: Any = r._RTCRtpReceiver__remote_bitrate_estimator
        self._remb: GroupedRembFeed | None = (
            GroupedRembFeed(estimator.add) if estimate_bandwidth and estimator else None
        )
        self._remb_last: tuple[int, int] | None = None
        #: When (aiortc ms) the REMB to the publisher last fell by 10 % or more.
        self.remb_decreased_ms: int | None = None
        self._loss = 0.0
        self._loss_at: int | None = None
        self._loss_counts: dict[int, tuple[int, int]] = {}
        self._path: DatagramPath | None = None
        self._original = r._handle_rtp_packet
        r._handle_rtp_packet = self._handle_rtp_packet
        self._attach_path()

    def _attach_path(self) -> DatagramPath | None:
        transport: Any = self._receiver.transport
        if transport is None:
            return None
        if self._path is None or self._path._dtls is not transport:
            if self._path is not None:
                self._path.unregister(self._receiver)
            self._path = DatagramPath.of(transport, self._tasks)
            self._path.register(self._receiver, self.on_packet)
        return self._path

    def _remb_due(self, bitrate: int, now: int) -> bool:
        """At most one REMB per ``REMB_INTERVAL_MS``, except at once when the estimate drops."""
        last = self._remb_last
        if last is None or now - last[0] >= REMB_INTERVAL_MS or bitrate < last[1] * 0.97:
            if last is not None and bitrate < last[1] * 0.9:
                self.remb_decreased_ms = now  # the estimator saw the publisher's queues grow
            self._remb_last = (now, bitrate)
            return True
        return False

    def uplink_loss(self, now: int) -> float:
        """Smoothed share of the publisher's packets lost on the way (updated once a second)."""
        if self._loss_at is not None and now - self._loss_at < 1000:
            return self._loss
        expected = received = 0
        for ssrc, stream in self._streams.items():
            e, r = stream.packets_expected, stream.packets_received
            before = self._loss_counts.get(ssrc, (e, r))
            self._loss_counts[ssrc] = (e, r)
            expected += e - before[0]
            received += r - before[1]
        self._loss_at = now
        if expected > 0:
            self._loss += 0.5 * (max(0, expected - received) / expected - self._loss)
        return self._loss

    def codec(self, payload_type: int) -> RTCRtpCodecParameters | None:
        return self._codecs.get(payload_type)

    @property
    def remb_sent_bps(self) -> int | None:
        """The last REMB sent to the publisher: the server's estimate of its uplink."""
        return None if self._remb_last is None else self._remb_last[1]

    def uninstall(self) -> None:
        r: Any = self._receiver
        r._handle_rtp_packet = self._original
        if self._path is not None:
            self._path.unregister(self._receiver)
        self.sink = None

    def _rtcp_ssrc(self) -> int | None:
        r: Any = self._receiver
        ssrc: int | None = r._RTCRtpReceiver__rtcp_ssrc
        return ssrc

    def _send_rtcp(self, packet: Any) -> bool:
        path = self._attach_path()
        return path is not None and path.send_rtcp(bytes(packet))

    async def send_pli(self, media_ssrc: int | None = None) -> bool:
        """Ask the publisher for a keyframe on ``media_ssrc`` (default: the last primary SSRC)."""
        rtcp_ssrc = self._rtcp_ssrc()
        ssrc = media_ssrc if media_ssrc is not None else self.media_ssrc
        if ssrc is None or rtcp_ssrc is None:
            return False
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=ssrc)
        return self._send_rtcp(packet)

    def _send_nack(self, media_ssrc: int, lost: list[int]) -> None:
        rtcp_ssrc = self._rtcp_ssrc()
        if rtcp_ssrc is not None:
            packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=media_ssrc)
            packet.lost = lost
            self._send_rtcp(packet)

    def _send_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        rtcp_ssrc = self._rtcp_ssrc()
        if rtcp_ssrc is not None:
            fci = pack_remb_fci(bitrate, ssrcs)
            self._send_rtcp(
                RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
            )

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """aiortc's path, for packets that arrived before the ``DatagramPath`` knew us."""
        self._attach_path()
        ext = packet.extensions
        self.on_packet(
            RtpView(
                packet.payload_type,
                packet.marker,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
                packet.payload,
                abs_send_time=ext.abs_send_time,
                audio_level=ext.audio_level,
                padding_size=packet.padding_size,
            ),
            arrival_time_ms,
        )

    def _kind(self, payload_type: int) -> tuple[RTCRtpCodecParameters, int | None] | None:
        codec = self._codecs.get(payload_type)
        if codec is None:
            return None
        known = self._kinds.get(payload_type)
        if known is None or known[0] is not codec:
            original: int | None = None  # not RTX
            if is_rtx(codec):
                apt = codec.parameters.get("apt")
                original = apt if isinstance(apt, int) else -1  # -1: RTX of nothing usable
            known = (codec, original)
            self._kinds[payload_type] = known
        return known

    def on_packet(self, packet: RtpView, arrival_time_ms: int) -> None:
        """One received RTP packet of this receiver (SRTP already removed)."""
        receiver: Any = self._receiver
        if not receiver._enabled:
            return
        remb = self._remb
        if remb is not None and packet.abs_send_time is not None:
            estimate = remb.add(
                packet.abs_send_time,
                arrival_time_ms,
                len(packet.payload) + packet.padding_size,
                packet.ssrc,
            )
            if estimate is not None:
                bitrate, ssrcs = estimate
                cap = self.remb_cap() if self.remb_cap is not None else None
                if cap is not None:
                    bitrate = min(bitrate, cap)
                if self._remb_due(bitrate, arrival_time_ms):
                    self._send_remb(bitrate, ssrcs)
        kind = self._kind(packet.payload_type)
        if kind is None:
            return
        codec, apt = kind
        stream: Any = self._streams.get(packet.ssrc)
        if stream is None:
            stream = aiortc.rtcrtpreceiver.StreamStatistics(codec.clockRate)
            self._streams[packet.ssrc] = stream
            self._active[packet.ssrc] = aiortc_clock.current_datetime()
        stream.add(packet)
        if apt is not None:  # RTX: recover the original packet
            original_ssrc = self._rtx_ssrc.get(packet.ssrc)
            if original_ssrc is None or len(packet.payload) < 2 or apt not in self._codecs:
                return
            payload = packet.payload
            packet = RtpView(
                apt,
                packet.marker,
                (payload[0] << 8) | payload[1],
                packet.timestamp,
                original_ssrc,
                payload[2:],
                abs_send_time=packet.abs_send_time,
                audio_level=packet.audio_level,
            )
        else:
            self.media_ssrc = packet.ssrc
        if self._nack_enabled:
            nack: Any = self._nacks.get(packet.ssrc)
            if nack is None:
                nack = self._nacks[packet.ssrc] = aiortc.rtcrtpreceiver.NackGenerator()
            last = nack.max_seq
            if (
                last is not None
                and not nack.missing
                and packet.sequence_number == (last + 1) & 0xFFFF
            ):
                nack.max_seq = packet.sequence_number  # in order, nothing missing: add()'s result
            elif nack.add(packet):
                self._send_nack(packet.ssrc, sorted(nack.missing))
        if not packet.payload:
            if apt is None and self.padding_sink is not None:
                self.padding_sink(packet, arrival_time_ms)
            return  # padding-only probe
        sink = self.sink
        if sink is not None:
            sink(packet, arrival_time_ms)


class _ParkedTrack(MediaStreamTrack):
    """A track whose ``recv`` never yields: parks a sender's own RTP loop.

    With no track, aiortc's sender polls every 20 ms; with this one it waits
    without waking, and never creates an encoder.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await asyncio.shield(self._never)
        raise MediaStreamError  # pragma: no cover - the future never completes

    def stop(self) -> None:
        super().stop()


def extension_ids(extensions_map: Any) -> ExtensionIds:
    ids = extensions_map._HeaderExtensionsMap__ids
    return ExtensionIds(ids.mid or 0, ids.abs_send_time or 0, ids.audio_level or 0)


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
                            on_report(block.fraction_lost / 256, s._RTCRtpSender__rtt)
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
        sent_before = ntp_of(time.time()) - int(_RESEND_MAX_AGE_S * (1 << 32))
        fresh = 0
        for seq in lost:
            entry = state.history[seq % RTP_HISTORY_SIZE]
            if entry is None or entry[0] != seq or entry[3] < sent_before or seq in nacked:
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
            if (ntp_of(time.time()) - sent_ntp) / (1 << 32) > _RESEND_MAX_AGE_S:
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
            plain = packet.serialize(extensions)
            if not state.path.send_rtp(plain):
                break
            s._RTCRtpSender__rtx_sequence_number = (sequence_number + 1) & 0xFFFF
            sent += len(plain)
        return sent

    def send(
        self, packet: RtpView, sequence_number: int, timestamp: int, abs_send_time: int, ntp: int
    ) -> bool:
        """Send ``packet``'s payload with this sender's header; False if it cannot send yet.

        ``abs_send_time`` and ``ntp`` are the send time, read once per received
        packet for all its subscribers.
        """
        state = self._state
        s: Any = self.sender
        if state is None or state.transport is not s.transport:
            state = self._ready()
            if state is None:
                return False
        data = state.writer.write(
            packet.marker, sequence_number, timestamp, abs_send_time, packet.audio_level,
            packet.payload,
        )  # fmt: skip
        if not state.path.send_rtp(data):
            return False
        self._last_seq = sequence_number
        state.history[sequence_number % RTP_HISTORY_SIZE] = (
            sequence_number, timestamp, packet, ntp
        )  # fmt: skip
        s._RTCRtpSender__ntp_timestamp = ntp
        s._RTCRtpSender__rtp_timestamp = timestamp
        s._RTCRtpSender__octet_count += len(packet.payload)
        s._RTCRtpSender__packet_count += 1
        return True


def find_transceiver(
    pcs: list[RTCPeerConnection], sender: RTCRtpSender
) -> RTCRtpTransceiver | None:
    for pc in pcs:
        for transceiver in pc.getTransceivers():
            if transceiver.sender is sender:
                return transceiver
    return None


def wrap_negotiation(pc: RTCPeerConnection, before: Callable[[RTCPeerConnection], None]) -> None:
    """Run ``before(pc)`` ahead of every ``createOffer`` and ``setRemoteDescription``.

    aiortc has no connection-wide codec preference; this lets the forwarder set
    each transceiver's preferences right before codecs are negotiated.
    """
    p: Any = pc
    create_offer = pc.createOffer
    set_remote = pc.setRemoteDescription

    async def _create_offer() -> Any:
        before(pc)
        return await create_offer()

    async def _set_remote(description: Any) -> None:
        before(pc)
        await set_remote(description)

    p.createOffer = _create_offer
    p.setRemoteDescription = _set_remote


def observe_sent_rtp(sender: RTCRtpSender, callback: Callable[[bytes], None]) -> None:
    """Call ``callback`` with every plaintext RTP/RTCP datagram ``sender``'s transport sends.

    Measurement only (benchmarks): with BUNDLE every sender of a connection shares
    the transport, so install it once per connection.
    """
    transport: Any = sender.transport
    original = transport._send_rtp

    async def _send_rtp(data: bytes) -> None:
        callback(data)
        await original(data)

    transport._send_rtp = _send_rtp
