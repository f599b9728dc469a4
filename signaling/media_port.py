"""What signaling needs from the media layer, as protocols: no aiortc, no PyAV here.

The composition root gives ``SignalingServer`` a ``MediaRoomFactory``; each live
room gets one ``MediaSession`` and hands it a ``MediaEvents`` to call back. A
request the media layer refuses raises ``MediaRefused`` with a wire error code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kernel.media_types import LinkReport, LinkStats, OfferToSend, PublicationRef
from signaling.errors import SignalingError
from signaling.protocol import ErrorCode


class MediaRefused(SignalingError):
    """The media layer refused a participant's request (a bad answer, a codec it lacks)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MediaEvents(Protocol):
    """How a room's media talks back to signaling."""

    async def send_offer(self, participant_id: str, offer: OfferToSend) -> None:
        """Deliver a (re)negotiation offer to the participant's page."""

    async def publication_added(self, publication: PublicationRef) -> None:
        """A participant's microphone or camera reached the server."""

    async def peer_failed(self, participant_id: str, reason: str) -> None:
        """The participant's connection failed or never answered; it was closed."""

    async def link_quality(self, participant_id: str, report: LinkReport) -> None:
        """What the participant's page should show about connection quality changed."""


class MediaSession(Protocol):
    """The peer connections of one room."""

    async def add_peer(self, participant_id: str, *, receive_only: bool = False) -> None:
        """Create the participant's connection (replacing an old one) and offer.

        ``receive_only`` (an observer): it receives everyone's media and publishes
        nothing; whatever it sends is not accepted."""

    async def remove_peer(self, participant_id: str) -> None:
        """Close the participant's connection and everything it published."""

    async def apply_answer(self, participant_id: str, sdp: str) -> None:
        """Apply the page's answer; ``MediaRefused`` when it cannot be used."""

    async def add_candidate(
        self,
        participant_id: str,
        candidate: str | None,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        """Add a trickled ICE candidate; ``MediaRefused`` when it is malformed."""

    def peer_count(self) -> int: ...

    def publications(self) -> list[PublicationRef]: ...

    def link_stats(self) -> list[LinkStats]:
        """Each participant's connection as measured (metrics); empty when not adapting."""

    async def aclose(self) -> None:
        """Close every peer connection and task of the room (bounded)."""


MediaRoomFactory = Callable[[str, MediaEvents], MediaSession]
