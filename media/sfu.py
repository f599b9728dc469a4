"""The SFU core: one RTCPeerConnection per participant, and who receives what.

``MediaRoom`` owns every peer of one consultation room. Each participant's
connection carries two *publish* transceivers (the server receives the
participant's microphone and camera) and one *slot* per remote publication
(the server sends someone else's media). Slots left idle by someone who left
are reused for the next publication of the same kind, so a long consultation
does not grow its SDP without bound.

The server always makes the offers; a peer never has two outstanding
(``media.negotiation``). How the media itself moves from a publication to a
slot is the ``Forwarder``'s job. Every task of the room is owned by its
``TaskSet``; ``aclose()`` ends them all within a bound.

When the forwarder adapts to each subscriber (``media.forwarding.LinkReporter``),
the room tells every participant, when it changes, how each connection is doing
and what they receive of each camera (``kernel.media_types.LinkReport``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from kernel.media_types import (
    KINDS,
    LINK_SEVERITY,
    LinkQuality,
    LinkReport,
    LinkStats,
    OfferToSend,
    RemoteQuality,
    TrackAssignment,
)
from kernel.taskset import TaskSet, raise_if_cancelling
from media.errors import MediaError, NegotiationError
from media.forwarding import Forwarder, Kind, LinkReporter, OfferShaper, Publication
from media.negotiation import NegotiationBroken, Negotiator, NegotiatorConfig

logger = logging.getLogger(__name__)

__all__ = ["KINDS", "MediaPeer", "MediaRoom", "NegotiatorConfig", "PeerState"]


class PeerState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


_PEER_TRANSITIONS: dict[PeerState, frozenset[PeerState]] = {
    PeerState.NEW: frozenset({PeerState.CONNECTING, PeerState.FAILED, PeerState.CLOSED}),
    PeerState.CONNECTING: frozenset({PeerState.CONNECTED, PeerState.FAILED, PeerState.CLOSED}),
    PeerState.CONNECTED: frozenset({PeerState.FAILED, PeerState.CLOSED}),
    PeerState.FAILED: frozenset({PeerState.CLOSED}),
    PeerState.CLOSED: frozenset(),
}

OfferSender = Callable[[str, OfferToSend], Awaitable[None]]
PublicationListener = Callable[[Publication], Awaitable[None]]
PeerFailedListener = Callable[[str, str], Awaitable[None]]
LinkReportListener = Callable[[str, LinkReport], Awaitable[None]]


def _worst(*qualities: LinkQuality | None) -> LinkQuality:
    known = [q for q in qualities if q is not None]
    return max(known, key=LINK_SEVERITY.__getitem__) if known else LinkQuality.GOOD


@dataclass
class _Slot:
    transceiver: RTCRtpTransceiver
    kind: Kind
    publication_id: str | None = None


@dataclass
class MediaPeer:
    """One participant's connection to the server."""

    room_id: str
    participant_id: str
    pc: RTCPeerConnection
    publish: dict[Kind, RTCRtpTransceiver]
    negotiator: Negotiator
    slots: list[_Slot] = field(default_factory=list)
    state: PeerState = PeerState.NEW
    #: an observer: its publish transceivers are inactive and nothing it sends is accepted
    receive_only: bool = False

    def set_state(self, new: PeerState) -> None:
        if new is self.state:
            return
        if new not in _PEER_TRANSITIONS[self.state]:
            raise MediaError(
                f"room {self.room_id} peer {self.participant_id}: "
                f"illegal transition {self.state.value} -> {new.value}"
            )
        logger.info(
            "room %s peer %s: %s -> %s",
            self.room_id,
            self.participant_id,
            self.state.value,
            new.value,
        )
        self.state = new

    def slot_for(self, publication_id: str) -> _Slot | None:
        return next((s for s in self.slots if s.publication_id == publication_id), None)


class MediaRoom:
    """Every peer connection of one room, and the subscriptions between them."""

    def __init__(
        self,
        room_id: str,
        forwarder: Forwarder,
        *,
        send_offer: OfferSender,
        ice_servers: list[RTCIceServer] | None = None,
        on_publication: PublicationListener | None = None,
        on_peer_failed: PeerFailedListener | None = None,
        negotiation: NegotiatorConfig | None = None,
        on_link_report: LinkReportListener | None = None,
        link_report_interval_s: float = 1.0,
    ) -> None:
        self.room_id = room_id
        self._forwarder = forwarder
        self._send_offer = send_offer
        self._ice_servers = list(ice_servers or [])
        self._on_publication = on_publication
        self._on_peer_failed = on_peer_failed
        self._negotiation = negotiation or NegotiatorConfig()
        self._peers: dict[str, MediaPeer] = {}
        self._publications: dict[str, Publication] = {}
        self._tasks = TaskSet(f"room {room_id} media")
        self._on_link_report = on_link_report
        self._link_report_interval_s = link_report_interval_s
        self._reported: dict[str, LinkReport] = {}
        self._reporting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ queries
    @property
    def peers(self) -> dict[str, MediaPeer]:
        return dict(self._peers)

    @property
    def publications(self) -> dict[str, Publication]:
        return dict(self._publications)

    @property
    def forwarder(self) -> Forwarder:
        return self._forwarder

    def task_names(self) -> list[str]:
        return self._tasks.names()

    # ---------------------------------------------------------- membership
    async def add_peer(self, participant_id: str, *, receive_only: bool = False) -> MediaPeer:
        """Create the participant's connection and send the first offer.

        ``receive_only`` (an observer): the connection receives everyone's media but
        its own transceivers are ``inactive`` and the offer lists nothing to publish,
        so nothing it sends is accepted or forwarded.
        """
        if participant_id in self._peers:
            await self.remove_peer(participant_id)
        # An explicit empty list keeps aiortc from using its default public STUN server.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=self._ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._forwarder.prepare_peer(pc, participant_id)
        publish: dict[Kind, RTCRtpTransceiver] = {
            kind: pc.addTransceiver(kind, direction="inactive" if receive_only else "recvonly")
            for kind in KINDS
        }
        negotiator = Negotiator(
            f"room {self.room_id} peer {participant_id}",
            pc,
            tasks=self._tasks,
            describe=lambda: self._describe(peer),
            deliver=lambda offer: self._send_offer(participant_id, offer),
            on_give_up=lambda reason: self._fail(peer, reason),
            config=self._negotiation,
        )
        peer = MediaPeer(
            self.room_id, participant_id, pc, publish, negotiator, receive_only=receive_only
        )
        self._peers[participant_id] = peer

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.spawn(self._publish(peer, track), name=f"publish {participant_id}")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self._tasks.spawn(self._connection_changed(peer), name=f"state {participant_id}")

        for publication in self._publications.values():
            if publication.participant_id != participant_id:
                self._subscribe(peer, publication)
        negotiator.request()
        self._start_reporting()
        return peer

    async def remove_peer(self, participant_id: str) -> None:
        """Close the participant's connection and everything it published."""
        peer = self._peers.pop(participant_id, None)
        if peer is None:
            return
        for kind in KINDS:
            publication_id = f"{participant_id}/{kind}"
            if self._publications.pop(publication_id, None) is None:
                continue
            self._forwarder.unpublish(publication_id)
            for other in self._peers.values():
                slot = other.slot_for(publication_id)
                if slot is not None:
                    slot.publication_id = None
                    other.negotiator.request()
        for slot in peer.slots:
            self._forwarder.detach(slot.transceiver.sender)
        self._reported.pop(participant_id, None)
        reporting = self._reporting
        if not self._peers and reporting is not None:
            self._reporting = None  # nobody to tell: the next peer starts it again
            if reporting is not asyncio.current_task():
                await self._tasks.cancel(reporting)
        await peer.negotiator.aclose()
        await peer.pc.close()
        self._forwarder.release_peer(peer.pc)
        if peer.state is not PeerState.CLOSED:
            peer.set_state(PeerState.CLOSED)
        logger.info("room %s peer %s: removed", self.room_id, participant_id)

    # ---------------------------------------------------------- signaling in
    async def apply_answer(self, participant_id: str, sdp: str) -> None:
        peer = self._require(participant_id)
        try:
            await peer.negotiator.apply_answer(sdp, self._forwarder.codecs)
        except NegotiationBroken as exc:
            await self._fail(peer, str(exc))
            raise
        if isinstance(self._forwarder, OfferShaper):
            self._forwarder.read_answer(peer.pc, sdp)
        if peer.state is PeerState.NEW:
            peer.set_state(PeerState.CONNECTING)

    async def add_candidate(
        self,
        participant_id: str,
        candidate: str | None,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        peer = self._require(participant_id)
        if not candidate:
            return  # end of candidates: aiortc needs no marker
        text = candidate.removeprefix("candidate:")
        try:
            parsed = candidate_from_sdp(text)
        except (ValueError, IndexError, AssertionError) as exc:
            raise NegotiationError(f"malformed ICE candidate: {exc or 'too few fields'}") from None
        if sdp_mid is None and sdp_mline_index is None:
            raise NegotiationError("an ICE candidate needs sdp_mid or sdp_mline_index")
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        try:
            await peer.pc.addIceCandidate(parsed)
        except (ValueError, AssertionError) as exc:
            raise NegotiationError(f"the ICE candidate could not be used: {exc}") from None

    async def aclose(self) -> None:
        for participant_id in list(self._peers):
            await self.remove_peer(participant_id)
        await self._tasks.aclose()
        await self._forwarder.aclose()

    # ------------------------------------------------------------ internals
    def _require(self, participant_id: str) -> MediaPeer:
        peer = self._peers.get(participant_id)
        if peer is None:
            raise NegotiationError(f"room {self.room_id}: {participant_id} has no media connection")
        return peer

    def _describe(self, peer: MediaPeer) -> OfferToSend:
        """The offer message for the peer's current local description."""
        description = peer.pc.localDescription
        publish = {
            kind: t.mid
            for kind, t in peer.publish.items()
            if t.mid is not None and not peer.receive_only
        }
        sdp = description.sdp
        if isinstance(self._forwarder, OfferShaper):
            sdp = self._forwarder.shape_offer(sdp, publish)
        tracks = tuple(
            TrackAssignment(
                mid=slot.transceiver.mid,
                participant_id=self._publications[slot.publication_id].participant_id,
                kind=slot.kind,
            )
            for slot in peer.slots
            if slot.publication_id in self._publications and slot.transceiver.mid is not None
        )
        return OfferToSend(sdp=sdp, publish=publish, tracks=tracks)

    async def _publish(self, peer: MediaPeer, track: MediaStreamTrack) -> None:
        kind = cast(Kind, track.kind)
        transceiver = peer.publish.get(kind)
        if transceiver is None or self._peers.get(peer.participant_id) is not peer:
            return
        if peer.receive_only:
            logger.warning(
                "room %s peer %s: receive-only, %s track refused",
                self.room_id,
                peer.participant_id,
                kind,
            )
            return
        publication = Publication(peer.participant_id, kind, track, transceiver.receiver)
        self._publications[publication.id] = publication
        self._forwarder.publish(publication)
        logger.info("room %s peer %s: publishing %s", self.room_id, peer.participant_id, kind)
        for other in self._peers.values():
            if other is not peer:
                self._subscribe(other, publication)
                other.negotiator.request()
        if self._on_publication is not None:
            await self._on_publication(publication)

    def _subscribe(self, peer: MediaPeer, publication: Publication) -> None:
        slot = next(
            (s for s in peer.slots if s.kind == publication.kind and s.publication_id is None), None
        )
        if slot is None:
            transceiver = peer.pc.addTransceiver(publication.kind, direction="sendonly")
            slot = _Slot(transceiver, publication.kind)
            peer.slots.append(slot)
        slot.publication_id = publication.id
        self._forwarder.attach(publication.id, slot.transceiver.sender)

    async def _connection_changed(self, peer: MediaPeer) -> None:
        state = peer.pc.connectionState
        if peer.state is PeerState.CLOSED or self._peers.get(peer.participant_id) is not peer:
            return
        if state == "connected" and peer.state is not PeerState.CONNECTED:
            if peer.state is PeerState.NEW:
                peer.set_state(PeerState.CONNECTING)
            peer.set_state(PeerState.CONNECTED)
        elif state == "failed":
            await self._fail(peer, "the media connection failed (ICE or DTLS)")

    async def _fail(self, peer: MediaPeer, reason: str) -> None:
        """Close a peer that cannot carry media, then tell the owner (who may offer anew)."""
        if self._peers.get(peer.participant_id) is not peer:
            return
        logger.warning("room %s peer %s: failed: %s", self.room_id, peer.participant_id, reason)
        if peer.state is not PeerState.CLOSED:
            peer.set_state(PeerState.FAILED)
        await self.remove_peer(peer.participant_id)
        if self._on_peer_failed is not None:
            await self._on_peer_failed(peer.participant_id, reason)

    # ------------------------------------------------------ connection quality
    def link_reports(self) -> dict[str, LinkReport]:
        """What each participant's page should show now (empty unless the forwarder adapts)."""
        reporter = self._forwarder
        if not isinstance(reporter, LinkReporter):
            return {}
        peers = dict(self._peers)
        quality: dict[str, LinkQuality] = {}
        for pid, peer in peers.items():
            state = reporter.link_state(peer.pc)
            quality[pid] = _worst(
                state.quality if state else None, reporter.uplink_quality(f"{pid}/video")
            )
        reports: dict[str, LinkReport] = {}
        for pid, peer in peers.items():
            others = []
            for other in peers:
                if other == pid:
                    continue
                slot = peer.slot_for(f"{other}/video")
                video = reporter.video_state(slot.transceiver.sender) if slot else None
                others.append(RemoteQuality(other, quality[other], video))
            reports[pid] = LinkReport(quality[pid], tuple(others))
        return reports

    def link_stats(self) -> list[LinkStats]:
        """Each participant's connection as the forwarder measures it (metrics, support)."""
        reporter = self._forwarder
        if not isinstance(reporter, LinkReporter):
            return []
        out = []
        for pid, peer in self._peers.items():
            state = reporter.link_state(peer.pc)
            if state is None:
                continue
            videos = {}
            for slot in peer.slots:
                if slot.kind == "video" and slot.publication_id is not None:
                    video = reporter.video_state(slot.transceiver.sender)
                    if video is not None:
                        videos[slot.publication_id] = video
            out.append(
                LinkStats(
                    participant_id=pid,
                    quality=state.quality,
                    estimate_bps=state.estimate_bps,
                    remb_bps=state.remb_bps,
                    sent_bps=state.sent_bps,
                    loss=state.loss,
                    rtt_s=state.rtt_s,
                    videos=videos,
                )
            )
        return out

    def _start_reporting(self) -> None:
        if (
            self._reporting is None
            and self._on_link_report is not None
            and isinstance(self._forwarder, LinkReporter)
        ):
            self._reporting = self._tasks.spawn(self._report_links(), name="link reports")

    async def _report_links(self) -> None:
        """Tell each participant about connection quality whenever their view of it changes."""
        while True:
            await asyncio.sleep(self._link_report_interval_s)
            raise_if_cancelling()
            for pid, report in self.link_reports().items():
                if self._reported.get(pid) == report or self._on_link_report is None:
                    continue
                self._reported[pid] = report
                try:
                    await self._on_link_report(pid, report)
                except Exception:
                    logger.exception("room %s peer %s: link report failed", self.room_id, pid)
