"""aiortc's private attributes: the version gate, their audit, the receive hook, helpers.

Forwarding encoded media at the RTP level needs four things aiortc does not
expose publicly:

* on a receiver, the parsed RTP packets (after SRTP, RTX unwrapping and NACK
  generation) *instead of* the jitter buffer and decoder thread (``ReceiveHook``,
  here);
* on a sender, a way to put an already-packetized RTP packet on the wire with
  the sender's SSRC, payload type, header extensions, retransmission history
  and RTCP sender-report counters (``media.outbound_rtp``);
* the negotiated codecs of a transceiver, and a hook on a sender's keyframe
  request (aiortc only sets a flag that the pre-encoded path ignores; also
  ``media.outbound_rtp``);
* a datagram path without aiortc's per-packet queue, task wake-up and
  coroutine chain (``media.datagram_path``): the forwarding hot path runs inside
  the socket's callback, which also touches aioice's connection and protocols.

Those two modules and this one are the only places aiortc's and aioice's private
attributes are touched. They were written against aiortc 1.16 and aioice 0.13
(``SUPPORTED_AIORTC``, ``SUPPORTED_AIOICE``). Importing this module under any
other version raises (the other two import it, so they raise too), and
``tests/media/test_aiortc_internals.py`` checks every attribute the three rely on
(``missing_attributes``), so an upgrade fails loudly instead of silently decoding
again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final

import aioice.ice as aioice_ice
import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import clock as aiortc_clock
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    pack_remb_fci,
)

from kernel.taskset import TaskSet
from media.errors import MediaError
from media.remb_feed import GroupedRembFeed, feed_for
from media.rtp_header import ExtensionIds, RtpView

#: The support trace of media.adaptation (``media.linktrace=DEBUG``): here, the REMB the
#: server sends a publisher, when it falls (a browser lowers what it encodes to it).
_trace = logging.getLogger("media.linktrace")

if TYPE_CHECKING:
    from media.datagram_path import DatagramPath

#: The aiortc versions (inclusive lower, exclusive upper) this module was written for.
SUPPORTED_AIORTC: Final = ((1, 16), (1, 17))
#: The same for aioice, whose connection and protocols ``media.datagram_path`` uses.
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

# Name-mangled private attributes used here, in media.datagram_path and in
# media.outbound_rtp, listed so a test can check them all.
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
    "_handle_rtcp_data",
    "_RTCDtlsTransport__rx_bytes",
    "_RTCDtlsTransport__rx_packets",
    "_RTCDtlsTransport__tx_bytes",
    "_RTCDtlsTransport__tx_packets",
)
_ICE_CONNECTION_ATTRS: Final = ("data_received", "_nominated", "_protocols", "_queue")


def missing_attributes(
    receiver: RTCRtpReceiver, sender: RTCRtpSender, transceiver: RTCRtpTransceiver
) -> list[str]:
    """Names this module, ``media.datagram_path`` and ``media.outbound_rtp`` rely on that
    the given live objects lack (empty when fine)."""
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

#: Called with each received media packet (RTX already unwrapped) and its arrival in ms
#: on aiortc's clock. Synchronous: on the fast path it runs inside the socket's callback.
PacketSink = Callable[[RtpView, int], None]

_NTP_UNIX_OFFSET_MS: Final = 2_208_988_800_000


def now_ms() -> int:
    """aiortc's ``clock.current_ms()`` (ms since the NTP epoch), without building datetimes."""
    return int(time.time() * 1000) + _NTP_UNIX_OFFSET_MS


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
            feed_for(estimator) if estimate_bandwidth and estimator else None
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
            # Imported here: media.datagram_path imports this module (the version gate, now_ms).
            from media.datagram_path import DatagramPath

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
                _trace.debug(
                    "publisher ssrc %s: REMB to it fell %.0f -> %.0f kbit/s",
                    self.media_ssrc,
                    last[1] / 1000,
                    bitrate / 1000,
                )
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
