"""The caption the pipeline makes, and the sink its owner implements.

A :class:`CaptionEvent` is a domain event, not a wire message: it has no wire
``type`` tag and is never sent as is. The composition root converts it to the
wire's ``signaling.protocol.Caption`` in exactly one place
(``web.room_captions.to_wire``), so the one typed server-message union stays the
only thing that reaches a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kernel.languages import Language


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    """One caption in one room.

    An utterance keeps its ``id`` from the first partial to the final. A final is
    published as soon as it is recognised (``translations`` empty) and once more
    with ``translations`` filled in, so listeners replace the caption with that
    id. All text is already redacted.
    """

    room_id: str
    #: utterance id, stable from the first partial to the final
    id: str
    speaker_id: str
    speaker_name: str
    #: the language spoken (the caption's original)
    language: Language
    text: str
    final: bool
    #: seconds since captions began in this room
    start: float
    end: float
    #: wall-clock time the event was made, Unix seconds
    ts: float
    translations: Mapping[Language, str] = field(default_factory=dict)


class CaptionSink(Protocol):
    """Where a room's caption events go (the composition root sends them to the room)."""

    async def publish(self, event: CaptionEvent) -> None: ...
