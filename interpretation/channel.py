"""Simultaneous interpretation: an interpreter's mode, the language groups, who listens.

Pure values and rules, no I/O (``web.room_interpretation`` puts them on the wire).

* In ``consecutive`` mode the interpreter speaks to the room, like anyone else.
* In ``channel`` mode the interpreter speaks *into* one language: their voice goes
  to the listeners of that language (the *audience*), who hear the original speaker
  ducked, not muted, unless they chose the original; everyone else does not hear
  the interpreter. The SFU still forwards every track unchanged: the mix happens in
  each listener's browser. The interpreter's captions are recognised in ``into``
  and labelled as interpretation.

The language groups are the languages of the people in the room who are not
interpreters; ``into`` must be one of them.

States (enforced; a move not in the table raises ``IllegalTransition``)::

    CONSECUTIVE -> CHANNEL;  CHANNEL -> CHANNEL (another language) | CONSECUTIVE
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from interpretation.errors import IllegalTransition, InterpretationError
from kernel.languages import LANGUAGES, Language

log = logging.getLogger(__name__)


class ChannelMode(enum.StrEnum):
    CONSECUTIVE = "consecutive"
    CHANNEL = "channel"


_TRANSITIONS: Final[Mapping[ChannelMode, frozenset[ChannelMode]]] = {
    ChannelMode.CONSECUTIVE: frozenset({ChannelMode.CHANNEL}),
    ChannelMode.CHANNEL: frozenset({ChannelMode.CHANNEL, ChannelMode.CONSECUTIVE}),
}


class ChannelRefused(InterpretationError):
    """A mode change that cannot be made (no such language group here)."""


@dataclass(frozen=True)
class Person:
    """Someone in the room, as the channel rules see them."""

    participant_id: str
    language: Language
    interpreter: bool = False


def language_groups(people: Iterable[Person]) -> list[Language]:
    """The languages of the people who are not interpreters, in the service's order."""
    present = {p.language for p in people if not p.interpreter}
    return [lang for lang in LANGUAGES if lang in present]


@dataclass
class InterpreterChannel:
    """One interpreter's mode in one room."""

    room_id: str
    interpreter_id: str
    mode: ChannelMode = ChannelMode.CONSECUTIVE
    into: Language | None = None

    def switch(self, mode: ChannelMode, into: Language | None, groups: list[Language]) -> bool:
        """Move to ``mode`` (speaking ``into``); returns whether anything changed."""
        if mode not in _TRANSITIONS[self.mode]:
            raise IllegalTransition(
                f"interpretation in room {self.room_id} by {self.interpreter_id}: "
                f"cannot go from {self.mode.value} to {mode.value}"
            )
        if mode is ChannelMode.CHANNEL:
            if into is None or into not in groups:
                have = ", ".join(groups) or "none"
                raise ChannelRefused(
                    f"room {self.room_id}: no listeners of {into or '(no language)'} to "
                    f"interpret into; the language groups here are {have}"
                )
        else:
            into = None
        changed = (mode, into) != (self.mode, self.into)
        if changed:
            log.info(
                "interpretation room=%s interpreter=%s: %s%s -> %s%s",
                self.room_id,
                self.interpreter_id,
                self.mode.value,
                f" into {self.into}" if self.into else "",
                mode.value,
                f" into {into}" if into else "",
            )
        self.mode, self.into = mode, into
        return changed

    def audience(self, people: Iterable[Person]) -> list[str]:
        """Who gets this interpreter's voice: the listeners of ``into`` (channel mode)."""
        if self.mode is not ChannelMode.CHANNEL or self.into is None:
            return []
        return sorted(
            p.participant_id for p in people if not p.interpreter and p.language == self.into
        )

    def speaking(self, own_language: Language) -> tuple[Language, bool]:
        """(the language the interpreter speaks now, whether it is interpretation)."""
        if self.mode is ChannelMode.CHANNEL and self.into is not None:
            return self.into, True
        return own_language, False

    def regroup(self, groups: list[Language]) -> bool:
        """The groups changed (someone left): a channel into a language nobody reads
        any more goes back to consecutive. Returns whether anything changed."""
        if self.mode is ChannelMode.CHANNEL and self.into not in groups:
            return self.switch(ChannelMode.CONSECUTIVE, None, groups)
        return False
