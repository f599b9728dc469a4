"""The RTP datagrams of a DTLS transport, sent and received without aiortc's queue.

aiortc hands every received datagram to the DTLS transport's task through a
queue (a task wake-up per packet, behind everything else the loop has ready) and
awaits a chain of coroutines for every send. ``DatagramPath`` takes SRTP
datagrams in the socket's callback and writes to the socket directly, which is
what removed the time forwarded packets waited in the event loop's ready queue
(bench/README.md, issue 16). That means reaching into aiortc's DTLS transport
(its SRTP sessions, state, RTP router, header-extension ids and byte counters)
and aioice's connection (its datagram callback, nominated pairs, protocols and
queue): private attributes, which ``media.aiortc_internals`` lists for its audit
(``_DTLS_ATTRS``, ``_ICE_CONNECTION_ATTRS``). Importing this module runs that
module's version gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import pylibsrtp
from aioice.ice import StunProtocol
from aiortc import RTCRtpReceiver
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import RtpPacket

from kernel.taskset import TaskSet
from media import arrival
from media.aiortc_internals import PacketSink, now_ms
from media.rtp_header import RtpView, parse_rtp
from media.transport_cc import (
    FeedbackError,
    TransportFeedback,
    TransportSequencer,
    feedback_messages,
    parse_feedback,
)

logger = logging.getLogger(__name__)

_DTLS_CONNECTED: Final = DtlsState.CONNECTED


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
        #: Transport-wide numbers of the probe padding sent here (``media.transport_cc``),
        #: and who hears the browser's feedback about them.
        self.transport_cc = TransportSequencer()
        self.feedback_listener: Callable[[TransportFeedback], None] | None = None
        self._original_handle_rtcp = dtls._handle_rtcp_data
        dtls._handle_rtcp_data = self._handle_rtcp_data

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
            fd = _stamped_fd(protocol)

            def datagram_received(
                data: bytes,
                addr: Any,
                original: Any = original,
                component: int = component,
                fd: int | None = fd,
            ) -> None:
                if 127 < data[0] < 192:
                    # When the kernel got it, read before anything else is: media.arrival.
                    now = now_ms()
                    self._data_received(
                        data, component, now if fd is None else arrival.arrival_ms(fd, now)
                    )
                else:
                    original(data, addr)

            patched: Any = protocol
            patched.datagram_received = datagram_received

    def _data_received(self, data: bytes, component: int, arrival_ms: int | None = None) -> None:
        # While aiortc's task still has datagrams queued, queue behind them: in order.
        if 127 < data[0] < 192 and not 191 < data[1] < 224 and not self._queued:  # SRTP
            srtp = self._dtls._rx_srtp
            if srtp is not None:
                self._receive_rtp(srtp, data, now_ms() if arrival_ms is None else arrival_ms)
                return
        if len(self._patched) != len(self._connection._protocols):
            self._patch_protocols()
        self._original_data_received(data, component)

    def _receive_rtp(self, srtp: Any, data: bytes, arrival_ms: int) -> None:
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

    async def _handle_rtcp_data(self, data: bytes) -> None:
        """aiortc's RTCP handling, after the transport-wide feedback in ``data`` (aiortc
        reads no FMT 15) went to ``feedback_listener``."""
        listener = self.feedback_listener
        if listener is not None:
            for payload in feedback_messages(data):
                try:
                    feedback = parse_feedback(payload)
                except FeedbackError as exc:
                    logger.debug("transport-wide feedback ignored: %s", exc)
                    continue
                try:
                    listener(feedback)
                except Exception:  # the rest of the RTCP (REMB, NACK, reports) must go on
                    logger.exception("transport-wide feedback handling failed")
        await self._original_handle_rtcp(data)

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


def _stamped_fd(protocol: Any) -> int | None:
    """The socket of an aioice UDP protocol, with the kernel's receive stamps switched on
    (``media.arrival``); None when there is none or it has no stamps."""
    transport = getattr(protocol, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return None
    try:
        fd: int = sock.fileno()
    except (OSError, ValueError):
        return None
    return fd if fd >= 0 and arrival.enable(fd) else None
