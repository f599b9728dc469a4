"""The caption the pipeline makes, and the sink its owner implements.

A :class:`CaptionEvent` is a domain event, not a wire message: it has no wire
``type`` tag and is never sent as is. The composition root converts it to the
wire's ``signaling.protocol.Caption`` in exactly one place
(``web.room_captions.to_wire``), so the one typed server-message union stays the
only thing that reaches a page.

A final always *settles*: it is published as soon as it is recognised, with the
listeners' languages it will be translated into in ``pending``; and (when anything
was pending) once more, bounded by ``CaptionLimits.translation_s``, with every
pending language either in ``translations`` or in ``untranslated`` with the reason.
So a page never waits for a translation that will not come.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from kernel.languages import Language
from kernel.roles import Role

#: What a caption is: someone's own words, or an interpreter speaking on a channel.
CaptionKind = Literal["speech", "interpretation"]


class Untranslated(enum.StrEnum):
    """Why a caption has no translation into a language (the page says so by this code)."""

    NOT_INSTALLED = "not_installed"  # no translation package route for the pair
    FAILED = "failed"  # the package is there but translating failed
    TIMED_OUT = "timed_out"  # translating took longer than the bound


@dataclass(frozen=True)
class Translations:
    """What a translator made of one final: the texts, and why the others are missing."""

    texts: Mapping[str, str]
    missing: Mapping[str, Untranslated] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    """One caption in one room.

    An utterance keeps its ``id`` from the first partial to the final. A final is
    published as soon as it is recognised (``translations`` empty, ``pending`` the
    languages it is being translated into) and, if anything was pending, once more
    with ``pending`` empty and each language in ``translations`` or
    ``untranslated``, so listeners replace the caption with that id. All text is
    already redacted.
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
    speaker_role: Role = Role.RESIDENT
    kind: CaptionKind = "speech"
    #: languages this final is still being translated into
    pending: tuple[Language, ...] = ()
    #: languages a listener reads that this final has no translation into, and why
    untranslated: Mapping[Language, Untranslated] = field(default_factory=dict)


class CaptionSink(Protocol):
    """Where a room's caption events go (the composition root sends them to the room)."""

    async def publish(self, event: CaptionEvent) -> None: ...
