"""Every touch of aiortc's private attributes, in one place.

Forwarding encoded media at the RTP level needs three things aiortc does not
expose publicly:

* on a receiver, the parsed RTP packets (after SRTP, RTX unwrapping and NACK
  generation) *instead of* the jitter buffer and decoder thread;
* on a sender, a way to put an already-packetized RTP packet on the wire with
  the sender's SSRC, payload type, header extensions, retransmission history
  and RTCP sender-report counters;
* the negotiated codecs of a transceiver, and a hook on a sender's keyframe
  request (aiortc only sets a flag that the pre-encoded path ignores).

This module was written against aiortc 1.16 (``SUPPORTED_AIORTC``). Importing it
under any other version raises, and ``tests/media/test_aiortc_internals.py``
checks every attribute it relies on, so an aiortc upgrade fails loudly instead
of silently decoding again.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Final

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import clock as aiortc_clock
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket, unwrap_rtx

from media.errors import MediaError

logger = logging.getLogger(__name__)

#: The aiortc versions (inclusive lower, exclusive upper) this module was written for.
SUPPORTED_AIORTC: Final = ((1, 16), (1, 17))


class AiortcVersionError(MediaError):
    """aiortc is not a version whose internals this module knows."""


def _parse_version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_aiortc_version(installed: str | None = None) -> None:
    """Raise unless the installed aiortc is inside ``SUPPORTED_AIORTC``."""
    text = installed if installed is not None else version("aiortc")
    low, high = SUPPORTED_AIORTC
    if not (low <= _parse_version(text) < high):
        raise AiortcVersionError(
            f"media.aiortc_internals was written for aiortc >={low[0]}.{low[1]},"
            f"<{high[0]}.{high[1]}, found {text}; re-check every private attribute "
            "it uses before widening the range"
        )


check_aiortc_version()

# Name-mangled private attributes used below, listed so a test can check them all.
_RECEIVER_ATTRS: Final = (
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__nack_generator",
    "_RTCRtpReceiver__remote_bitrate_estimator",
    "_RTCRtpReceiver__active_ssrc",
    "_handle_rtp_packet",
    "_send_rtcp_nack",
    "_send_rtcp_pli",
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
    "_send_keyframe",
    "_ssrc",
)
_TRANSCEIVER_ATTRS: Final = ("_codecs",)


def missing_attributes(
    receiver: RTCRtpReceiver, sender: RTCRtpSender, transceiver: RTCRtpTransceiver
) -> list[str]:
    """Names this module relies on that the given live objects lack (empty when fine)."""
    missing = [f"RTCRtpReceiver.{a}" for a in _RECEIVER_ATTRS if not hasattr(receiver, a)]
    missing += [f"RTCRtpSender.{a}" for a in _SENDER_ATTRS if not hasattr(sender, a)]
    missing += [f"RTCRtpTransceiver.{a}" for a in _TRANSCEIVER_ATTRS if not hasattr(transceiver, a)]
    for name in ("StreamStatistics", "NackGenerator"):
        if not hasattr(aiortc.rtcrtpreceiver, name):
            missing.append(f"aiortc.rtcrtpreceiver.{name}")
    return missing


#: Minimum spacing of REMB feedback per receiver (aiortc sends one per estimator update).
REMB_INTERVAL_MS: Final = 250

#: Called with each received media packet (RTX already unwrapped) and its arrival in ms.
PacketSink = Callable[[RtpPacket, int], Awaitable[None]]


class ReceiveHook:
    """Replaces a receiver's RTP path: statistics, RTX, NACK, REMB, then ``sink``.

    The jitter buffer and the decoder thread never see a packet, so no decoder is
    ever created for this receiver.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        sink: PacketSink | None = None,
        *,
        estimate_bandwidth: bool = True,
    ) -> None:
        self._receiver = receiver
        self.sink = sink
        self.media_ssrc: int | None = None
        r: Any = receiver
        self._codecs: dict[int, RTCRtpCodecParameters] = r._RTCRtpReceiver__codecs
        self._rtx_ssrc: dict[int, int] = r._RTCRtpReceiver__rtx_ssrc
        self._streams: dict[int, Any] = r._RTCRtpReceiver__remote_streams
        self._active: dict[int, Any] = r._RTCRtpReceiver__active_ssrc
        self._nack: Any = r._RTCRtpReceiver__nack_generator
        # REMB feedback drives a browser publisher's bitrate; measurement clients skip it.
        self._remb: Any = (
            r._RTCRtpReceiver__remote_bitrate_estimator if estimate_bandwidth else None
        )
        self._remb_last: tuple[int, int] | None = None
        self._original = r._handle_rtp_packet
        r._handle_rtp_packet = self._handle_rtp_packet

    def _remb_due(self, bitrate: int, now_ms: int) -> bool:
        """At most one REMB per ``REMB_INTERVAL_MS``, except at once when the estimate drops."""
        last = self._remb_last
        if last is None or now_ms - last[0] >= REMB_INTERVAL_MS or bitrate < last[1] * 0.97:
            self._remb_last = (now_ms, bitrate)
            return True
        return False

    def codec(self, payload_type: int) -> RTCRtpCodecParameters | None:
        return self._codecs.get(payload_type)

    def uninstall(self) -> None:
        r: Any = self._receiver
        r._handle_rtp_packet = self._original
        self.sink = None

    async def send_pli(self) -> bool:
        """Ask the publisher for a keyframe on its primary (non-RTX) SSRC."""
        if self.media_ssrc is None:
            return False
        r: Any = self._receiver
        await r._send_rtcp_pli(self.media_ssrc)
        return True

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        receiver: Any = self._receiver
        if not receiver._enabled:
            return
        if self._remb is not None and packet.extensions.abs_send_time is not None:
            remb = self._remb.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            if remb is not None and self._remb_due(remb[0], arrival_time_ms):
                await _send_remb(receiver, remb)
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            stream = aiortc.rtcrtpreceiver.StreamStatistics(codec.clockRate)
            self._streams[packet.ssrc] = stream
            self._active[packet.ssrc] = aiortc_clock.current_datetime()
        stream.add(packet)
        if is_rtx(codec):
            original_ssrc = self._rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if (
                original_ssrc is None
                or len(packet.payload) < 2
                or not isinstance(apt, int)
                or apt not in self._codecs
            ):
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        else:
            self.media_ssrc = packet.ssrc
        if not packet.payload:
            return  # padding-only probe
        if self._nack is not None and self._nack.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(self._nack.missing))
        sink = self.sink
        if sink is not None:
            await sink(packet, arrival_time_ms)


async def _send_remb(receiver: Any, remb: tuple[int, list[int]]) -> None:
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
    if rtcp_ssrc is not None:
        await receiver._send_rtcp(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
            )
        )


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


@dataclass(frozen=True)
class ExtensionIds:
    """One-byte header extension ids a sender negotiated (0: not negotiated)."""

    mid: int = 0
    abs_send_time: int = 0
    audio_level: int = 0


def extension_ids(extensions_map: Any) -> ExtensionIds:
    ids = extensions_map._HeaderExtensionsMap__ids
    return ExtensionIds(ids.mid or 0, ids.abs_send_time or 0, ids.audio_level or 0)


def serialize_rtp(
    ids: ExtensionIds,
    mid_element: bytes,
    payload_type: int,
    marker: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    abs_send_time: int,
    audio_level: tuple[bool, int] | None,
    payload: bytes,
) -> bytes:
    """RTP packet bytes with one-byte header extensions (RFC 8285), as aiortc would write them.

    A specialised ``RtpPacket.serialize``: the forwarder writes every packet once
    per subscriber, and the generic path costs more than the SRTP step.
    """
    ext = bytearray(mid_element)
    if ids.abs_send_time:
        ext.append((ids.abs_send_time << 4) | 2)
        ext += abs_send_time.to_bytes(3, "big")
    if ids.audio_level and audio_level is not None:
        ext.append(ids.audio_level << 4)
        ext.append((0x80 if audio_level[0] else 0) | (audio_level[1] & 0x7F))
    if not ext:
        header = struct.pack(
            "!BBHLL", 0x80, (marker << 7) | payload_type, sequence_number, timestamp, ssrc
        )
        return header + payload
    ext += bytes(-len(ext) % 4)
    header = struct.pack(
        "!BBHLLHH",
        0x90,
        (marker << 7) | payload_type,
        sequence_number,
        timestamp,
        ssrc,
        0xBEDE,
        len(ext) >> 2,
    )
    return header + bytes(ext) + payload


@dataclass
class _SendState:
    payload_type: int
    codec: RTCRtpCodecParameters
    mid: str | None
    extensions_map: Any
    history: dict[int, RtpPacket]
    ids: ExtensionIds
    mid_element: bytes


class OutboundRtp:
    """Writes forwarded RTP packets through one ``RTCRtpSender``.

    SSRC, payload type and header extensions are the sender's; the packet lands
    in the sender's history so NACKs are answered (over RTX when negotiated),
    and the sender-report counters advance as if aiortc had sent it.
    """

    def __init__(self, sender: RTCRtpSender, transceiver: RTCRtpTransceiver) -> None:
        self.sender = sender
        self._transceiver = transceiver
        self._state: _SendState | None = None
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

    def _ready(self) -> _SendState | None:
        if self._state is not None:
            return self._state
        s: Any = self.sender
        if not s._RTCRtpSender__started:
            return None
        codec = self.negotiated_codec()
        if codec is None:
            return None
        if codec.payloadType is None:
            return None
        mid: str | None = s._RTCRtpSender__mid
        extensions_map = s._RTCRtpSender__rtp_header_extensions_map
        ids = extension_ids(extensions_map)
        mid_bytes = (mid or "").encode()
        mid_element = b""
        if ids.mid and 0 < len(mid_bytes) <= 16:
            mid_element = bytes([(ids.mid << 4) | (len(mid_bytes) - 1)]) + mid_bytes
        self._state = _SendState(
            payload_type=codec.payloadType,
            codec=codec,
            mid=mid,
            extensions_map=extensions_map,
            history=s._RTCRtpSender__rtp_history,
            ids=ids,
            mid_element=mid_element,
        )
        return self._state

    async def send(
        self,
        source: RtpPacket,
        sequence_number: int,
        timestamp: int,
    ) -> bool:
        """Send ``source``'s payload with the given outgoing numbering; False if not ready."""
        state = self._ready()
        if state is None:
            return False
        packet = RtpPacket(
            payload_type=state.payload_type,
            marker=source.marker,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=self.sender._ssrc,
            payload=source.payload,
        )
        ntp = aiortc_clock.current_ntp_time()
        abs_send_time = (ntp >> 14) & 0x00FFFFFF
        audio_level = source.extensions.audio_level
        packet.extensions.abs_send_time = abs_send_time
        packet.extensions.mid = state.mid
        packet.extensions.audio_level = audio_level
        state.history[sequence_number % RTP_HISTORY_SIZE] = packet
        data = serialize_rtp(
            state.ids,
            state.mid_element,
            state.payload_type,
            source.marker,
            sequence_number,
            timestamp,
            packet.ssrc,
            abs_send_time,
            audio_level,
            source.payload,
        )
        try:
            await self.sender.transport._send_rtp(data)
        except ConnectionError:
            return False
        s: Any = self.sender
        s._RTCRtpSender__ntp_timestamp = ntp
        s._RTCRtpSender__rtp_timestamp = timestamp
        s._RTCRtpSender__octet_count += len(source.payload)
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
