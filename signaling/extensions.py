"""The seam for features that ride on a room: captions, recording consent, ...

The composition root registers ``RoomExtension`` objects with the signaling
server; the server calls them as rooms open and close, as people enter and leave,
as tracks are published, and for client messages the core does not handle
itself. Extensions talk back through a ``RoomMessenger``. A failing extension
never takes the call down: ``ExtensionHooks`` logs it and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Protocol

from kernel.media_types import PublicationRef
from signaling.live import LiveRoom, Participant
from signaling.protocol import ClientMessage, ServerMessage

logger = logging.getLogger(__name__)


class RoomMessenger(Protocol):
    async def send(self, participant: Participant, message: ServerMessage) -> None:
        """One message to one participant."""

    async def broadcast(self, room: LiveRoom, message: ServerMessage) -> None:
        """One message to everyone in the room (not the lobby)."""


class RoomExtension(Protocol):
    async def room_opened(self, room: LiveRoom) -> None: ...

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None: ...

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None: ...

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None: ...

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        """The room closes on this node. ``final``: the consultation ended; otherwise this
        node lets go (shutdown, the room moves) and the state in Redis must stay."""

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        """Act on a message the core does not handle; True when this extension did."""
        ...


class ExtensionHooks:
    """The registered extensions, called in order, each failure contained."""

    def __init__(self) -> None:
        self._extensions: list[RoomExtension] = []

    def register(self, extension: RoomExtension) -> None:
        self._extensions.append(extension)

    def unregister(self, extension: RoomExtension) -> None:
        if extension in self._extensions:
            self._extensions.remove(extension)

    async def room_opened(self, room: LiveRoom) -> None:
        for ext in list(self._extensions):
            await self._guard(room, "room_opened", ext.room_opened(room))

    async def participant_entered(self, room: LiveRoom, participant: Participant) -> None:
        for ext in list(self._extensions):
            await self._guard(
                room, "participant_entered", ext.participant_entered(room, participant)
            )

    async def publication_added(self, room: LiveRoom, publication: PublicationRef) -> None:
        for ext in list(self._extensions):
            await self._guard(room, "publication_added", ext.publication_added(room, publication))

    async def participant_left(self, room: LiveRoom, participant: Participant) -> None:
        for ext in list(self._extensions):
            await self._guard(room, "participant_left", ext.participant_left(room, participant))

    async def room_closed(self, room: LiveRoom, *, final: bool) -> None:
        for ext in list(self._extensions):
            await self._guard(room, "room_closed", ext.room_closed(room, final=final))

    async def handle(
        self, room: LiveRoom, participant: Participant, message: ClientMessage
    ) -> bool:
        for ext in list(self._extensions):
            if await ext.handle(room, participant, message):
                return True
        return False

    @staticmethod
    async def _guard(room: LiveRoom, hook: str, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            logger.exception("room %s: extension hook %s failed", room.id, hook)
