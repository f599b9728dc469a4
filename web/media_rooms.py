"""Media for signaling: the SFU's rooms behind ``signaling.media_port``.

``signaling`` knows nothing of aiortc and ``media`` nothing of signaling; this
adapter joins them. ``SfuRooms`` is the ``MediaRoomFactory`` given to the
signaling server, and the registry extensions (recording, captions) ask for a
room's packet source and audio taps — never a concrete forwarder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCIceServer

from kernel.media_types import LinkReport, LinkStats, OfferToSend, PublicationRef
from media.errors import MediaError
from media.forwarding import AudioTap, Forwarder, PacketSource, Publication
from media.negotiation import NegotiatorConfig
from media.sfu import MediaRoom
from signaling.media_port import MediaEvents, MediaRefused
from signaling.protocol import ErrorCode

logger = logging.getLogger(__name__)


def _refusal(exc: MediaError) -> MediaRefused:
    return MediaRefused(ErrorCode(exc.code), str(exc))


class SfuRoom:
    """One room's ``MediaRoom`` as a ``signaling.media_port.MediaSession``."""

    def __init__(self, room: MediaRoom, on_close: Callable[[SfuRoom], None]) -> None:
        self.media = room
        self._on_close = on_close

    @property
    def room_id(self) -> str:
        return self.media.room_id

    # -- MediaSession -----------------------------------------------------------------
    async def add_peer(self, participant_id: str, *, receive_only: bool = False) -> None:
        await self.media.add_peer(participant_id, receive_only=receive_only)

    async def remove_peer(self, participant_id: str) -> None:
        await self.media.remove_peer(participant_id)

    async def apply_answer(self, participant_id: str, sdp: str) -> None:
        try:
            await self.media.apply_answer(participant_id, sdp)
        except MediaError as exc:
            raise _refusal(exc) from exc

    async def add_candidate(
        self,
        participant_id: str,
        candidate: str | None,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        try:
            await self.media.add_candidate(participant_id, candidate, sdp_mid, sdp_mline_index)
        except MediaError as exc:
            raise _refusal(exc) from exc

    def peer_count(self) -> int:
        return len(self.media.peers)

    def publications(self) -> list[PublicationRef]:
        return [p.ref for p in self.media.publications.values()]

    def link_stats(self) -> list[LinkStats]:
        return self.media.link_stats()

    async def aclose(self) -> None:
        try:
            await self.media.aclose()
        finally:
            self._on_close(self)

    # -- for extensions -----------------------------------------------------------------
    @property
    def packets(self) -> PacketSource:
        """Encoded packets of the room's publications (recording)."""
        return self.media.forwarder

    def audio_tap(self, publication_id: str) -> AudioTap:
        """A new 16 kHz PCM consumer of an audio publication (captions)."""
        return self.media.forwarder.audio_tap(publication_id)


class SfuRooms:
    """The ``MediaRoomFactory`` for signaling, and the registry of this node's media rooms."""

    def __init__(
        self,
        forwarder_factory: Callable[[], Forwarder],
        *,
        ice_servers: list[RTCIceServer] | None = None,
        negotiation: NegotiatorConfig | None = None,
    ) -> None:
        self._forwarder_factory = forwarder_factory
        self._ice_servers = list(ice_servers or [])
        self._negotiation = negotiation
        self._rooms: dict[str, SfuRoom] = {}

    def __call__(self, room_id: str, events: MediaEvents) -> SfuRoom:
        async def send_offer(participant_id: str, offer: OfferToSend) -> None:
            await events.send_offer(participant_id, offer)

        async def on_publication(publication: Publication) -> None:
            await events.publication_added(publication.ref)

        async def on_link_report(participant_id: str, report: LinkReport) -> None:
            await events.link_quality(participant_id, report)

        media = MediaRoom(
            room_id,
            self._forwarder_factory(),
            send_offer=send_offer,
            ice_servers=self._ice_servers,
            on_publication=on_publication,
            on_peer_failed=events.peer_failed,
            negotiation=self._negotiation,
            on_link_report=on_link_report,
        )
        room = SfuRoom(media, self._forget)
        self._rooms[room_id] = room
        return room

    def get(self, room_id: str) -> SfuRoom | None:
        return self._rooms.get(room_id)

    def _forget(self, room: SfuRoom) -> None:
        if self._rooms.get(room.room_id) is room:
            del self._rooms[room.room_id]
