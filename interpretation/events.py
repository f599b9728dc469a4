"""Caption messages on the wire, and the sink the signaling server implements.

(The client's ``caption_language`` request is ``signaling.protocol.SetCaptionLanguage``.)
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class CaptionEvent(BaseModel):
    """One caption, sent to everyone in the room on socket.io event ``message``.

    An utterance keeps its ``id`` from the first partial to the final. A final is
    sent as soon as it is recognised (``translations`` may be empty) and once more
    with ``translations`` filled in; clients replace the caption with that id.
    All text is already redacted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["caption"] = "caption"
    room_id: str
    id: str = Field(description="utterance id, stable from the first partial to the final")
    speaker_id: str
    speaker_name: str
    language: str = Field(description="the language spoken (the caption's original)")
    text: str
    final: bool
    start: float = Field(description="seconds since captions began in this room")
    end: float
    ts: float = Field(description="wall-clock time the event was made, Unix seconds")
    translations: dict[str, str] = Field(default_factory=dict)


class CaptionSink(Protocol):
    """Where a room's caption events go (the signaling server emits them to the room)."""

    async def publish(self, event: CaptionEvent) -> None: ...
