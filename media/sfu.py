"""The SFU core: one RTCPeerConnection per participant, and who receives what.

``MediaRoom`` owns every peer of one consultation room. Each participant's
connection carries two *publish* transceivers (the server receives the
participant's microphone and camera) and one *slot* per remote publication
(the server sends someone else's media). Slots left idle by someone who left
are reused for the next publication of the same kind, so a long consultation
does not grow its SDP without bound.

The server always makes the offers; a peer never has two outstanding. How the
media itself moves from a publication to a slot is the ``Forwarder``'s job.
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
    RTCSessionDescription,
)
from aiortc import sdp as sdp_module
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from media.codecs import RoomCodecs, check_participant
from media.errors import MediaError, NegotiationError
from media.forwarding import Forwarder, Kind, Publication

logger = logging.getLogger(__name__)

KINDS: tuple[Kind, ...] = ("audio", "video")


class PeerState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


_PEER_TRANSITIONS: dict[PeerState, frozenset[PeerState]] = {
    PeerState.NEW: frozenset({PeerState.CONNECTING, PeerState.CLOSED}),
    PeerState.CONNECTING: frozenset({PeerState.CONNECTED, PeerState.FAILED, PeerState.CLOSED}),
    PeerState.CONNECTED: frozenset({PeerState.FAILED, PeerState.CLOSED}),
    PeerState.FAILED: frozenset({PeerState.CLOSED}),
    PeerState.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class TrackAssignment:
    mid: str
    participant_id: str
    kind: Kind


@dataclass(frozen=True)
class OfferToSend:
    """What signaling must deliver to one participant as an ``offer`` message."""

    sdp: str
    publish: dict[Kind, str]
    tracks: list[TrackAssignment]


OfferSender = Callable[[str, OfferToSend], Awaitable[None]]
PublicationListener = Callable[[Publication], Awaitable[None]]


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
    slots: list[_Slot] = field(default_factory=list)
    state: PeerState = PeerState.NEW
    awaiting_answer: bool = False
    renegotiate: bool = False
    negotiations: int = 0
    task: asyncio.Task[None] | None = None

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
        on_peer_failed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.room_id = room_id
        self._forwarder = forwarder
        self._send_offer = send_offer
        self._ice_servers = list(ice_servers or [])
        self._on_publication = on_publication
        self._on_peer_failed = on_peer_failed
        self._peers: dict[str, MediaPeer] = {}
        self._publications: dict[str, Publication] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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

    # ---------------------------------------------------------- membership
    async def add_peer(self, participant_id: str) -> MediaPeer:
        """Create the participant's connection and send the first offer."""
        if participant_id in self._peers:
            await self.remove_peer(participant_id)
        # An explicit empty list keeps aiortc from using its default public STUN server.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=self._ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._forwarder.prepare_peer(pc)
        publish: dict[Kind, RTCRtpTransceiver] = {
            kind: pc.addTransceiver(kind, direction="recvonly") for kind in KINDS
        }
        peer = MediaPeer(self.room_id, participant_id, pc, publish)
        self._peers[participant_id] = peer

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._spawn(self._publish(peer, track), f"publish {participant_id} {track.kind}")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self._spawn(self._connection_changed(peer), f"state {participant_id}")

        for publication in self._publications.values():
            if publication.participant_id != participant_id:
                self._subscribe(peer, publication)
        self._request_negotiation(peer)
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
                    self._request_negotiation(other)
        for slot in peer.slots:
            self._forwarder.detach(slot.transceiver.sender)
        if peer.task is not None and not peer.task.done():
            peer.task.cancel()
            await asyncio.wait([peer.task])  # waits without swallowing our own cancellation
        await peer.pc.close()
        if peer.state is not PeerState.CLOSED:
            peer.set_state(PeerState.CLOSED)
        logger.info("room %s peer %s: removed", self.room_id, participant_id)

    # ---------------------------------------------------------- signaling in
    async def apply_answer(self, participant_id: str, sdp: str) -> None:
        peer = self._require(participant_id)
        if not peer.awaiting_answer:
            raise NegotiationError("no offer is waiting for an answer; ignore stale answers")
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except (ValueError, AssertionError, InvalidStateError) as exc:
            raise NegotiationError(f"the answer could not be applied: {exc}") from exc
        finally:
            peer.awaiting_answer = False
        self._check_codecs(participant_id, sdp)
        if peer.state is PeerState.NEW:
            peer.set_state(PeerState.CONNECTING)
        if peer.renegotiate:
            self._request_negotiation(peer)

    def _check_codecs(self, participant_id: str, answer: str) -> None:
        """Forwarding needs the room's codecs on both ends: say so when a browser lacks them."""
        room_codecs = getattr(self._forwarder, "codecs", None)
        if not isinstance(room_codecs, RoomCodecs):
            return  # a transcoding forwarder adapts to whatever was negotiated
        names: set[str] = set()
        for media in sdp_module.SessionDescription.parse(answer).media:
            if media.kind in KINDS and media.port != 0:
                names |= {c.mimeType.split("/")[-1] for c in media.rtp.codecs}
        check_participant(room_codecs, participant_id, names)

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
        except (ValueError, IndexError) as exc:
            raise NegotiationError(f"malformed ICE candidate: {exc}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        await peer.pc.addIceCandidate(parsed)

    async def aclose(self) -> None:
        for participant_id in list(self._peers):
            await self.remove_peer(participant_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._forwarder.aclose()

    # ------------------------------------------------------------ internals
    def _require(self, participant_id: str) -> MediaPeer:
        peer = self._peers.get(participant_id)
        if peer is None:
            raise MediaError(f"room {self.room_id}: {participant_id} has no media connection")
        return peer

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"room {self.room_id}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "room %s: task %s failed", self.room_id, task.get_name(), exc_info=task.exception()
            )

    async def _publish(self, peer: MediaPeer, track: MediaStreamTrack) -> None:
        kind = cast(Kind, track.kind)
        transceiver = peer.publish.get(kind)
        if transceiver is None or self._peers.get(peer.participant_id) is not peer:
            return
        publication = Publication(peer.participant_id, kind, track, transceiver.receiver)
        self._publications[publication.id] = publication
        self._forwarder.publish(publication)
        logger.info("room %s peer %s: publishing %s", self.room_id, peer.participant_id, kind)
        for other in self._peers.values():
            if other is not peer:
                self._subscribe(other, publication)
                self._request_negotiation(other)
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

    def _request_negotiation(self, peer: MediaPeer) -> None:
        if self._peers.get(peer.participant_id) is not peer:
            return  # the peer left while we were busy; its connection is closed
        peer.renegotiate = True
        if peer.awaiting_answer or (peer.task is not None and not peer.task.done()):
            return
        peer.task = asyncio.ensure_future(self._negotiate(peer))
        peer.task.set_name(f"room {self.room_id}: negotiate {peer.participant_id}")

    async def _negotiate(self, peer: MediaPeer) -> None:
        peer.renegotiate = False
        if self._peers.get(peer.participant_id) is not peer or peer.pc.connectionState == "closed":
            return  # leaving: nothing to negotiate
        peer.awaiting_answer = True
        try:
            offer = await peer.pc.createOffer()
            await peer.pc.setLocalDescription(offer)
        except InvalidStateError:
            peer.awaiting_answer = False
            logger.info(
                "room %s peer %s: connection closed before the offer",
                self.room_id,
                peer.participant_id,
            )
            return
        except Exception:
            peer.awaiting_answer = False
            logger.exception(
                "room %s peer %s: could not create an offer", self.room_id, peer.participant_id
            )
            return
        peer.negotiations += 1
        publish = {kind: t.mid for kind, t in peer.publish.items() if t.mid is not None}
        tracks = [
            TrackAssignment(
                mid=slot.transceiver.mid,
                participant_id=self._publications[slot.publication_id].participant_id,
                kind=slot.kind,
            )
            for slot in peer.slots
            if slot.publication_id in self._publications and slot.transceiver.mid is not None
        ]
        description = peer.pc.localDescription
        logger.debug(
            "room %s peer %s: offer #%d", self.room_id, peer.participant_id, peer.negotiations
        )
        try:
            await self._send_offer(
                peer.participant_id,
                OfferToSend(sdp=description.sdp, publish=publish, tracks=tracks),
            )
        except Exception:
            peer.awaiting_answer = False
            logger.exception(
                "room %s peer %s: could not deliver the offer", self.room_id, peer.participant_id
            )

    async def _connection_changed(self, peer: MediaPeer) -> None:
        state = peer.pc.connectionState
        if peer.state is PeerState.CLOSED:
            return
        if state == "connected" and peer.state is not PeerState.CONNECTED:
            if peer.state is PeerState.NEW:
                peer.set_state(PeerState.CONNECTING)
            peer.set_state(PeerState.CONNECTED)
        elif state == "failed" and peer.state in (PeerState.CONNECTING, PeerState.CONNECTED):
            peer.set_state(PeerState.FAILED)
            if self._on_peer_failed is not None:
                await self._on_peer_failed(peer.participant_id)
