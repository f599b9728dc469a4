"""Forwarding at the RTP-packet level: no decode, no re-encode, no jitter buffer.

Like mediasoup's ``SimpleConsumer`` and Janus's VideoRoom, each received RTP
packet is written to every subscriber's sender as soon as it arrives, with the
subscriber's own SSRC, payload type, sequence numbers and timestamps (an offset
per subscription, re-anchored at each keyframe after a (re)attach). A video
subscription starts at a keyframe: packets before one are dropped while a
rate-limited PLI asks the publisher for one. Sends are non-blocking UDP writes,
so a slow subscriber cannot build a queue on the server; the browser's own
NACK/PLI recovers loss.

The hot path is synchronous and runs inside the socket's callback
(``datagram_path.DatagramPath``): one header parse and one clock read per
received packet, then per subscriber one header write (``media.rtp_header``),
SRTP protect and ``sendto``. Packet listeners (recording, the audio tap) get an
``RtpPacket`` built once per packet, only when there are listeners.

Adaptation (issue 10, ``media.adaptation``): each video publication has a
``LayerTracker`` that sees every packet once; each video subscription has a
``LayerSelector`` that admits or drops the packet for its subscriber (the one
hook, in ``_Subscription.forward``); each subscriber's REMB and receiver
reports feed its estimate, and a task re-allocates layers twice a second.
"""

from __future__ import annotations

import collections
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Final

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from kernel.media_types import Kind, LinkQuality, VideoState
from kernel.taskset import TaskSet
from media.adaptation import Adaptation, AdaptationConfig, RateMeter
from media.aiortc_internals import ReceiveHook, find_transceiver, now_ms, wrap_negotiation
from media.audio_tap import OpusAudioTap
from media.codecs import RoomCodecs, apply_room_codecs, same_codec
from media.errors import MediaError
from media.forwarding import LinkState, PacketListener, Publication
from media.keyframes import DEFAULT_MIN_INTERVAL, KeyframeRequester, is_keyframe_start
from media.layers import LayerSelector, LayerTracker
from media.outbound_rtp import OutboundRtp
from media.rtp_header import WIRE_OVERHEAD, RtpView, abs_send_time_of, ntp_of
from media.simulcast import offer_simulcast
from media.transport_cc import answered_transport_cc, offer_transport_cc
from media.video_ladder import VideoTrack

logger = logging.getLogger(__name__)

__all__ = ["PacketListener", "RtpForwarder"]

#: A publisher whose uplink estimate fell below these (within the last
#: ``UPLINK_DECREASE_S``), or who loses this share of packets, is shown weak / poor.
UPLINK_WEAK_BPS: Final = 400_000
UPLINK_POOR_BPS: Final = 150_000
UPLINK_DECREASE_S: Final = 10.0
UPLINK_WEAK_LOSS: Final = 0.05
UPLINK_POOR_LOSS: Final = 0.15

_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32


class _Source:
    """One publication as received: its hook, subscriptions, listeners, keyframe control."""

    def __init__(
        self,
        publication: Publication,
        hook: ReceiveHook,
        min_interval: float,
        tasks: TaskSet,
        latency_ms: collections.deque[float] | None = None,
    ) -> None:
        self.publication = publication
        self.latency_ms = latency_ms
        self.hook = hook
        self.codec_name: str | None = None
        self.clock_rate = 90_000 if publication.kind == "video" else 48_000
        self.subscriptions: list[_Subscription] = []
        self.listeners: list[PacketListener] = []
        self.requester: KeyframeRequester | None = None
        self._requesters: dict[int, KeyframeRequester] = {}
        self._tasks = tasks
        self._min_interval = min_interval
        #: Video: the encodings and layers every subscriber's selector chooses from.
        self.layers: LayerTracker | None = None
        #: Audio: its bit rate, which every subscriber's allocation reserves first.
        self.meter: RateMeter | None = None
        if publication.kind == "video":
            self.requester = KeyframeRequester(
                hook.send_pli, tasks=tasks, name=publication.id, min_interval=min_interval
            )
            self.layers = LayerTracker(lambda: self.codec_name)
            hook.padding_sink = self.on_padding
        else:
            self.meter = RateMeter()
        hook.sink = self.on_packet

    def request_keyframe(self, ssrc: int | None = None) -> None:
        """Ask for a keyframe of encoding ``ssrc``; None: of every encoding (rate-limited)."""
        if self.requester is None:
            return
        if ssrc is None:
            known = self.layers.ssrcs() if self.layers is not None else []
            if not known:
                self.requester.request()  # nothing received yet: the SSRC it will have
            for each in known:
                self.request_keyframe(each)
            return
        requester = self._requesters.get(ssrc)
        if requester is None:
            hook = self.hook

            async def send() -> bool:
                return await hook.send_pli(ssrc)

            requester = self._requesters[ssrc] = KeyframeRequester(
                send,
                tasks=self._tasks,
                name=f"{self.publication.id} ssrc {ssrc}",
                min_interval=self._min_interval,
            )
        requester.request()

    def on_padding(self, packet: RtpView, arrival_time_ms: int) -> None:
        """A padding-only packet: each subscriber's numbering closes the gap it leaves."""
        for subscription in self.subscriptions:
            if subscription.selector is not None:
                subscription.selector.skip(packet)

    def on_packet(self, packet: RtpView, arrival_time_ms: int) -> None:
        if self.codec_name is None:
            codec = self.hook.codec(packet.payload_type)
            if codec is None:
                return
            self.codec_name = codec.name
            self.clock_rate = codec.clockRate
        if self.layers is not None:
            self.layers.observe(packet, arrival_time_ms)
        elif self.meter is not None:
            self.meter.bytes += len(packet.payload) + WIRE_OVERHEAD
        if self.subscriptions:
            now = time.time()  # one clock read for every subscriber of this packet
            ntp = ntp_of(now)
            abs_send_time = abs_send_time_of(ntp)
            for subscription in self.subscriptions:
                subscription.forward(packet, now, abs_send_time, ntp)
            if self.latency_ms is not None:
                # Residence time in the server: datagram arrival to the last subscriber's send.
                self.latency_ms.append(now_ms() - arrival_time_ms)
        if self.listeners:
            rtp = _rtp_packet(packet)
            for listener in self.listeners:
                listener(rtp, self.codec_name)

    def close(self) -> None:
        self.hook.sink = None
        self.listeners.clear()
        self.subscriptions.clear()
        self.hook.padding_sink = None
        if self.requester is not None:
            self.requester.close()
        for requester in self._requesters.values():
            requester.close()
        self._requesters.clear()


def _rtp_packet(view: RtpView) -> RtpPacket:
    """The ``RtpPacket`` packet listeners get (``media.forwarding.PacketListener``)."""
    packet = RtpPacket(
        payload_type=view.payload_type,
        marker=view.marker,
        sequence_number=view.sequence_number,
        timestamp=view.timestamp,
        ssrc=view.ssrc,
        payload=view.payload,
    )
    packet.extensions.abs_send_time = view.abs_send_time
    packet.extensions.audio_level = view.audio_level
    return packet


class _Subscription:
    """One sender carrying one source, with its own numbering.

    ``forward`` is the one place a packet is admitted to or dropped for this
    subscriber, right before the send: per-subscriber bandwidth adaptation
    (issue 10: pause video, pick a VP8 temporal layer or a simulcast encoding)
    decides there, and a dropped packet must then shift ``seq_offset`` so the
    subscriber sees no gap it would NACK.
    """

    def __init__(
        self,
        source: _Source,
        out: OutboundRtp,
        state: _NumberingState,
        selector: LayerSelector | None = None,
    ) -> None:
        self.source = source
        self.out = out
        self.state = state
        #: Video with adaptation: which encoding and layers this subscriber gets.
        self.selector = selector
        self.video = source.publication.kind == "video"
        self.in_ssrc: int | None = None
        self.start_seq = 0
        self.guard_start = False
        self.seq_offset = 0
        self.ts_offset = 0
        self.forwarded = 0
        self.dropped_waiting = 0
        #: None until the sender's codec is negotiated; then whether it matches the source.
        self._codec_ok: bool | None = None

    def _anchor(self, packet: RtpView, now: float) -> None:
        state = self.state
        if state.last_seq is None or state.last_ts is None:
            next_seq = packet.sequence_number
            next_ts = packet.timestamp
        else:
            next_seq = (state.last_seq + 1) % _SEQ_MOD
            elapsed = max(now - state.last_time, 1 / 30)
            next_ts = (state.last_ts + int(elapsed * self.source.clock_rate)) % _TS_MOD
        self.seq_offset = (next_seq - packet.sequence_number) % _SEQ_MOD
        self.ts_offset = (next_ts - packet.timestamp) % _TS_MOD
        self.start_seq = packet.sequence_number
        self.guard_start = True
        self.in_ssrc = packet.ssrc

    def forward(self, packet: RtpView, now: float, abs_send_time: int, ntp: int) -> None:
        """Send ``packet`` to this subscriber, renumbered, unless it is not admitted."""
        codec_name = self.source.codec_name or ""
        if self._codec_ok is None:
            negotiated = self.out.negotiated_codec()
            if negotiated is not None:
                self._codec_ok = same_codec(negotiated.name, codec_name)
                if not self._codec_ok:
                    logger.error(
                        "%s: subscriber negotiated %s but the publisher sends %s; not forwarding",
                        self.source.publication.id,
                        negotiated.name,
                        codec_name,
                    )
        if self._codec_ok is False:
            return
        selector = self.selector
        if selector is not None:
            admitted = selector.admit(packet, now)
            if admitted is None:
                return
            view, seq, ts = admitted
            self._send(view, seq, ts, now, abs_send_time, ntp)
            return
        if packet.ssrc != self.in_ssrc:
            if self.video and not is_keyframe_start(codec_name, packet.payload):
                self.dropped_waiting += 1
                self.source.request_keyframe()
                return
            self._anchor(packet, now)
        elif self.guard_start:
            since_start = (packet.sequence_number - self.start_seq) % _SEQ_MOD
            if since_start >= 0x8000:
                return  # reordered packet from before this subscription's start
            if since_start > 0x1000:
                self.guard_start = False  # far past the start: plain offset mapping from now on
        seq = (packet.sequence_number + self.seq_offset) % _SEQ_MOD
        ts = (packet.timestamp + self.ts_offset) % _TS_MOD
        self._send(packet, seq, ts, now, abs_send_time, ntp)

    def _send(
        self, packet: RtpView, seq: int, ts: int, now: float, abs_send_time: int, ntp: int
    ) -> None:
        # Admitted: from here on the packet goes to this subscriber.
        if self.out.send(packet, seq, ts, abs_send_time, ntp):
            self.forwarded += 1
            state = self.state
            if state.last_seq is None or (seq - state.last_seq) % _SEQ_MOD < 0x8000:
                state.last_seq = seq
                state.last_ts = ts
                state.last_time = now
        elif self.forwarded == 0:  # sender not started yet: anchor again on a later keyframe
            self.in_ssrc = None
            if self.selector is not None:
                self.selector.restart()

    def keyframe_wanted(self) -> None:
        """The subscriber sent PLI/FIR: ask the publisher for the encoding it gets."""
        if self.selector is not None:
            self.selector.keyframe_wanted()
        else:
            self.source.request_keyframe()


class _NumberingState:
    """What one sender last put on the wire, so a re-attach continues its numbering."""

    def __init__(self) -> None:
        self.last_seq: int | None = None
        self.last_ts: int | None = None
        self.last_time = 0.0


def _mark_feedback_negotiated(out: OutboundRtp) -> None:
    """Tell the subscriber's queue-delay view that transport-wide feedback will come, once
    both the answer (which took it) and the view are known, whichever came first."""
    if out.transport_cc_id is not None and out.queue_delay is not None:
        out.queue_delay.negotiated = True


class RtpForwarder:
    """A ``media.forwarding.Forwarder`` that forwards RTP packets without transcoding."""

    def __init__(
        self,
        codecs: RoomCodecs | None = None,
        *,
        keyframe_min_interval: float = DEFAULT_MIN_INTERVAL,
        measure_latency: bool = False,
        adaptation: AdaptationConfig | None = None,
        simulcast: bool = True,
    ) -> None:
        self._codecs = codecs or RoomCodecs()
        #: Ask publishers for simulcast (VP8 only: layers are told apart by VP8 keyframes).
        self._simulcast = simulcast and self._codecs.video.upper() == "VP8"
        #: With ``measure_latency``: ms from a packet's arrival to its last forward (recent 100k).
        self.latency_ms: collections.deque[float] | None = (
            collections.deque(maxlen=100_000) if measure_latency else None
        )
        self._min_interval = keyframe_min_interval
        self._pcs: weakref.WeakSet[RTCPeerConnection] = weakref.WeakSet()
        #: Who each peer connection is, for logs (``prepare_peer``'s label).
        self._labels: weakref.WeakKeyDictionary[RTCPeerConnection, str] = (
            weakref.WeakKeyDictionary()
        )
        self._hooks: weakref.WeakKeyDictionary[RTCRtpReceiver, ReceiveHook] = (
            weakref.WeakKeyDictionary()
        )
        self._sources: dict[str, _Source] = {}
        self._outbound: dict[RTCRtpSender, OutboundRtp] = {}
        self._numbering: dict[RTCRtpSender, _NumberingState] = {}
        self._subscriptions: dict[RTCRtpSender, _Subscription] = {}
        self._taps: list[OpusAudioTap] = []
        self._tasks = TaskSet("rtp forwarder")
        self._adaptation = Adaptation(adaptation, tasks=self._tasks, now_ms=now_ms)
        #: Ask subscribers for transport-wide feedback on probe padding
        #: (``media.transport_cc``): only padding probes use it.
        config = self._adaptation.config
        self._transport_cc = config.enabled and config.padding_probes

    @property
    def codecs(self) -> RoomCodecs:
        return self._codecs

    # -- peers -------------------------------------------------------------------------

    def prepare_peer(self, pc: RTCPeerConnection, label: str = "") -> None:
        self._pcs.add(pc)
        if label:
            self._labels[pc] = label
        wrap_negotiation(
            pc, lambda p: apply_room_codecs(p, self._codecs, publish_rtx=not self._simulcast)
        )

        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    self._hook(transceiver.receiver)

        pc.on("track", on_track)

    def release_peer(self, pc: RTCPeerConnection) -> None:
        """Drop every per-sender record of a closed peer (they would pin it in memory)."""
        for transceiver in pc.getTransceivers():
            sender = transceiver.sender
            self.detach(sender)
            self._outbound.pop(sender, None)
            self._numbering.pop(sender, None)
            hook = self._hooks.pop(transceiver.receiver, None)
            if hook is not None:
                hook.uninstall()
        self._adaptation.forget(pc)
        self._pcs.discard(pc)

    def shape_offer(self, sdp: str, publish: Mapping[Kind, str]) -> str:
        """The offer a page gets: with simulcast asked for on its camera (``media.simulcast``)
        and transport-wide feedback on the video it receives (``media.transport_cc``)."""
        if self._transport_cc:
            sdp = offer_transport_cc(sdp, skip_mids=publish.values())
        mid = publish.get("video")
        if not self._simulcast or mid is None:
            return sdp
        return offer_simulcast(sdp, mid)

    def read_answer(self, pc: RTCPeerConnection, sdp: str) -> None:
        """Which of the page's received videos took transport-wide feedback."""
        if not self._transport_cc:
            return
        answered = answered_transport_cc(sdp)
        for transceiver in pc.getTransceivers():
            out = self._outbound.get(transceiver.sender)
            if out is not None and transceiver.mid is not None:
                out.transport_cc_id = answered.get(transceiver.mid)
                _mark_feedback_negotiated(out)

    def _hook(self, receiver: RTCRtpReceiver) -> ReceiveHook:
        hook = self._hooks.get(receiver)
        if hook is None:
            hook = ReceiveHook(receiver, tasks=self._tasks)
            self._hooks[receiver] = hook
        return hook

    # -- publications ------------------------------------------------------------------

    def publish(self, publication: Publication) -> None:
        if publication.id in self._sources:
            self.unpublish(publication.id)
        source = _Source(
            publication,
            self._hook(publication.receiver),
            self._min_interval,
            self._tasks,
            self.latency_ms,
        )
        self._sources[publication.id] = source
        self._adaptation.watch(source.layers or source.meter or RateMeter())
        logger.info("%s: published (rtp forwarding)", publication.id)

    def unpublish(self, publication_id: str) -> None:
        source = self._sources.pop(publication_id, None)
        if source is None:
            return
        for subscription in list(source.subscriptions):
            self.detach(subscription.out.sender)
        for tap in [t for t in self._taps if t.publication_id == publication_id]:
            tap.end()
        for watched in (source.layers, source.meter):
            if watched is not None:
                self._adaptation.unwatch(watched)
        source.close()
        logger.info("%s: unpublished", publication_id)

    def request_keyframe(self, publication_id: str) -> None:
        """Ask a video publication's sender for a keyframe (rate-limited); no-op for audio."""
        source = self._sources.get(publication_id)
        if source is not None:
            source.request_keyframe()

    def source_codec(self, publication_id: str) -> str | None:
        """The codec name a publication arrives in, once its first packet was seen."""
        source = self._sources.get(publication_id)
        return None if source is None else source.codec_name

    # -- subscriptions -----------------------------------------------------------------

    def _outbound_for(self, sender: RTCRtpSender) -> OutboundRtp:
        out = self._outbound.get(sender)
        if out is None:
            transceiver = find_transceiver(list(self._pcs), sender)
            if transceiver is None:
                raise MediaError("attach: sender belongs to no peer given to prepare_peer()")
            out = OutboundRtp(sender, transceiver, tasks=self._tasks)
            self._outbound[sender] = out
            self._numbering[sender] = _NumberingState()
        return out

    def attach(self, publication_id: str, sender: RTCRtpSender) -> None:
        source = self._sources.get(publication_id)
        if source is None:
            raise MediaError(f"no publication {publication_id!r} to attach")
        if source.publication.kind != sender.kind:
            raise MediaError(f"cannot attach {publication_id!r} to a {sender.kind} sender")
        self.detach(sender)
        out = self._outbound_for(sender)
        numbering = self._numbering[sender]
        selector: LayerSelector | None = None
        if source.layers is not None:
            selector = LayerSelector(
                source.layers, numbering, source.clock_rate, source.request_keyframe
            )
        subscription = _Subscription(source, out, numbering, selector)
        source.subscriptions.append(subscription)
        self._subscriptions[sender] = subscription
        self._adapt(subscription)
        out.on_keyframe_request(subscription.keyframe_wanted)
        source.request_keyframe()

    def _adapt(self, subscription: _Subscription) -> None:
        """Put a new subscription under its subscriber's link estimate and allocation."""
        out = subscription.out
        pc = next(
            (p for p in self._pcs if out.sender in (t.sender for t in p.getTransceivers())), None
        )
        if pc is None:
            return
        publication = subscription.source.publication
        name = f"subscriber {self._labels.get(pc) or f'peer {id(pc):x}'}"
        link = self._adaptation.link(pc, name, out.sent_counters)
        estimator = link.estimator
        out.on_feedback(estimator.on_remb, estimator.on_report, estimator.on_nack)
        out.queue_delay = estimator.queue_delay
        _mark_feedback_negotiated(out)  # the answer may have come first
        out.pacer = link.pacer
        if subscription.selector is not None and subscription.source.layers is not None:
            track = VideoTrack(
                f"{publication.id} -> {out.ssrc}",
                subscription.selector,
                subscription.source.layers,
            )
            self._adaptation.add_video(pc, out.sender, track)
            link.padders[out.sender] = out.send_padding
        elif subscription.source.meter is not None:
            self._adaptation.add_audio(pc, out.sender, subscription.source.meter)
        link.streams[out.sender] = out.stream_counters  # after add_*: they forget the sender

    def detach(self, sender: RTCRtpSender) -> None:
        subscription = self._subscriptions.pop(sender, None)
        if subscription is None:
            return
        subscription.out.on_keyframe_request(None)
        self._adaptation.remove(sender)
        if subscription in subscription.source.subscriptions:
            subscription.source.subscriptions.remove(subscription)

    # -- consumers of encoded packets --------------------------------------------------

    def add_packet_listener(
        self, publication_id: str, listener: PacketListener
    ) -> Callable[[], None]:
        """Call ``listener`` for each packet of a publication; returns the remover."""
        source = self._sources.get(publication_id)
        if source is None:
            raise MediaError(f"no publication {publication_id!r} to listen to")
        source.listeners.append(listener)

        def remove() -> None:
            if listener in source.listeners:
                source.listeners.remove(listener)

        return remove

    def audio_tap(self, publication_id: str) -> OpusAudioTap:
        source = self._sources.get(publication_id)
        if source is None or source.publication.kind != "audio":
            raise MediaError(f"no audio publication {publication_id!r} to tap")
        tap = OpusAudioTap(publication_id)
        remove = self.add_packet_listener(publication_id, tap.feed)
        tap.on_close(remove)
        tap.on_close(lambda: self._taps.remove(tap) if tap in self._taps else None)
        self._taps.append(tap)
        return tap

    # -- introspection for tests and metrics -------------------------------------------

    def subscription_stats(self, sender: RTCRtpSender) -> tuple[int, int]:
        """(packets forwarded, packets dropped while waiting for a keyframe) for ``sender``."""
        subscription = self._subscriptions.get(sender)
        if subscription is None:
            return (0, 0)
        return subscription.forwarded, subscription.dropped_waiting

    # -- adaptation: media.forwarding.LinkReporter ---------------------------------------

    @property
    def adaptation(self) -> Adaptation:
        return self._adaptation

    def link_state(self, pc: RTCPeerConnection) -> LinkState | None:
        link = self._adaptation.get(pc)
        if link is None:
            return None
        e = link.estimator
        return LinkState(link.quality, e.estimate_bps, e.remb_bps, e.sent_bps, e.loss, e.rtt_s)

    def video_state(self, sender: RTCRtpSender) -> VideoState | None:
        track = self._adaptation.video_track(sender)
        return None if track is None else track.state

    def uplink_quality(self, publication_id: str) -> LinkQuality | None:
        """How the publisher's sending looks: packets lost on the way, or an estimate that fell.

        A low REMB alone says nothing (it follows what the publisher sends: 1.5x,
        and starts low); one that *fell* below the thresholds within
        ``UPLINK_DECREASE_S`` is the server's estimator seeing the uplink's queues grow.
        """
        source = self._sources.get(publication_id)
        if source is None or source.layers is None:
            return None
        hook = source.hook
        now = now_ms()
        loss = hook.uplink_loss(now)
        quality = LinkQuality.GOOD
        if loss > UPLINK_POOR_LOSS:
            quality = LinkQuality.POOR
        elif loss > UPLINK_WEAK_LOSS:
            quality = LinkQuality.WEAK
        remb, fell = hook.remb_sent_bps, hook.remb_decreased_ms
        if remb is not None and fell is not None and now - fell < UPLINK_DECREASE_S * 1000:
            if remb < UPLINK_POOR_BPS:
                quality = LinkQuality.POOR
            elif remb < UPLINK_WEAK_BPS and quality is LinkQuality.GOOD:
                quality = LinkQuality.WEAK
        return quality

    def held(self) -> dict[str, int]:
        """How many records of each kind this forwarder holds (leak checks, metrics)."""
        return {
            "sources": len(self._sources),
            "subscriptions": len(self._subscriptions),
            "outbound": len(self._outbound),
            "taps": len(self._taps),
            "tasks": len(self._tasks),
        }

    async def aclose(self) -> None:
        for sender in list(self._subscriptions):
            self.detach(sender)
        for tap in list(self._taps):
            await tap.aclose()
        self._taps.clear()
        for source in self._sources.values():
            source.close()
        self._sources.clear()
        self._outbound.clear()
        self._numbering.clear()
        for hook in list(self._hooks.values()):
            hook.sink = None
        await self._tasks.aclose()
