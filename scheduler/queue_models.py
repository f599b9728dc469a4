"""The walk-in queue's states and models: presence of staff, tickets of residents."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel.languages import Language


class Presence(StrEnum):
    AWAY = "away"
    AVAILABLE = "available"
    BUSY = "busy"


#: Allowed presence changes; ``busy`` is only ever set by the dispatcher.
PRESENCE_TRANSITIONS: dict[Presence, frozenset[Presence]] = {
    Presence.AWAY: frozenset({Presence.AVAILABLE, Presence.AWAY}),
    Presence.AVAILABLE: frozenset({Presence.AWAY, Presence.BUSY, Presence.AVAILABLE}),
    Presence.BUSY: frozenset({Presence.AVAILABLE, Presence.AWAY}),
}


class TicketState(StrEnum):
    WAITING = "waiting"
    MATCHED = "matched"
    DONE = "done"
    LEFT = "left"
    EXPIRED = "expired"


TICKET_TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    TicketState.WAITING: frozenset({TicketState.MATCHED, TicketState.LEFT, TicketState.EXPIRED}),
    TicketState.MATCHED: frozenset({TicketState.DONE, TicketState.LEFT}),
    TicketState.DONE: frozenset(),
    TicketState.LEFT: frozenset(),
    TicketState.EXPIRED: frozenset(),
}


class QueueJoinRequest(BaseModel):
    """``POST /api/queue``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=80)
    language: Language
    topic: str = Field(description="topic id from GET /api/topics")
    needs_interpreter: bool | None = Field(
        default=None, description="default: true unless the resident speaks Korean"
    )


class Ticket(BaseModel):
    """One resident's place in the queue, as stored."""

    id: str
    state: TicketState
    name: str
    language: Language
    topic: str
    needs_interpreter: bool
    joined_at: float
    last_seen: float
    counselor: str | None = None
    interpreter: str | None = None
    room_id: str | None = None
    matched_at: float | None = None


class TicketView(BaseModel):
    """What a resident's queue page polls."""

    id: str
    state: TicketState
    topic: str
    language: Language
    position: int | None = Field(description="1 = next; None once no longer waiting")
    estimated_wait_s: int | None = Field(
        description="from recent session lengths; None when no counselor is on duty"
    )
    join_url: str | None = None
    ticket_key: str | None = Field(default=None, description="returned once when joining")
    needs_interpreter: bool = False
    unavailable: Literal["no_interpreter", "no_counselor"] | None = Field(
        default=None,
        description="why nobody can be matched now: no interpreter for this language, or no "
        "counselor for this topic, on duty (the page offers a booking, or going on without "
        "an interpreter); the ticket keeps its place",
    )
