"""The seam for features that ride on a room: captions, recording consent, ...

The composition root registers ``RoomExtension`` objects with the signaling
server; the server calls them as rooms open and close, as people enter and leave,
as tracks are published, and for client messages the core does not handle
itself. Extensions talk back through a ``RoomMessenger``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from media.forwarding import Publication
from signaling.live import LiveRoom, Participant
from signaling.protocol import ClientMessage


class RoomMessenger(Protocol):
    async def send(self, participant: Participant, message: BaseModel) -> None:
        """One message (a pydantic model with a ``type`` tag) to one participant."""

    async def broadcast(self, room: LiveRoom, message: BaseModel) -> None:
        """One message to everyone in the room (not the lobby)."""


class RoomExtension(Protocol):
    async def room_opened(self, room: LiveRoom) -> None: ...

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None: ...

    async def publication_added(self, room: LiveRoom, publication: Publication) -> None: ...

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None: ...

    async def room_closed(self, room: LiveRoom) -> None: ...

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        """Act on a message the core does not handle; True when this extension did."""
        ...
