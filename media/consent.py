"""Recording consent: a pure state machine, no I/O.

The counselor asks to record; every participant in the room must agree before
a single byte is written. A decline stops everything. Someone who joins while
recording pauses it (nothing is written) until they agree; if they decline,
recording stops. Leaving removes a participant from the rule.

    IDLE --start--> ASKING --all agreed--> RECORDING --join--> PAUSED
                      |                       |   ^--all agreed--'  |
                      '--decline/stop-->  STOPPED <--decline/stop---'
    STOPPED --start--> ASKING   (a new recording; consents are asked again)

A failure, or the end of the consultation, stops it too (``abort``). When another
process takes the room over, ``everyone_away`` forgets who is present but keeps
each agreement for that person's return.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from media.errors import MediaError

logger = logging.getLogger(__name__)


class ConsentError(MediaError):
    """An action the consent rules do not allow in the current state."""


class RecordingState(StrEnum):
    IDLE = "idle"
    ASKING = "asking"
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"


_ALLOWED: dict[RecordingState, frozenset[RecordingState]] = {
    RecordingState.IDLE: frozenset({RecordingState.ASKING}),
    RecordingState.ASKING: frozenset({RecordingState.RECORDING, RecordingState.STOPPED}),
    RecordingState.RECORDING: frozenset({RecordingState.PAUSED, RecordingState.STOPPED}),
    RecordingState.PAUSED: frozenset({RecordingState.RECORDING, RecordingState.STOPPED}),
    RecordingState.STOPPED: frozenset({RecordingState.ASKING}),
}


class Answer(StrEnum):
    PENDING = "pending"
    AGREED = "agreed"
    DECLINED = "declined"


@dataclass(frozen=True)
class Transition:
    old: RecordingState
    new: RecordingState
    reason: str


@dataclass
class ConsentMachine:
    """Who has agreed to the current recording request, and whether it may run."""

    room_id: str
    state: RecordingState = RecordingState.IDLE
    answers: dict[str, Answer] = field(default_factory=dict)
    requested_by: str | None = None
    stop_reason: str | None = None
    #: who agreed to the current request and then left; a reconnect keeps the answer
    agreed_before_leaving: set[str] = field(default_factory=set)

    # -- queries ----------------------------------------------------------------------

    @property
    def writing_allowed(self) -> bool:
        """True only while every present participant has agreed."""
        return self.state is RecordingState.RECORDING

    @property
    def pending(self) -> list[str]:
        return sorted(p for p, a in self.answers.items() if a is Answer.PENDING)

    # -- actions ----------------------------------------------------------------------

    def start(self, by: str, participants: Iterable[str]) -> Transition:
        """``by`` (the counselor) asks to record; ``by`` agrees by asking."""
        if RecordingState.ASKING not in _ALLOWED[self.state]:
            raise ConsentError(f"room {self.room_id}: a recording is already {self.state}")
        present = set(participants) | {by}
        self.answers = {p: Answer.PENDING for p in present}
        self.agreed_before_leaving = set()
        self.answers[by] = Answer.AGREED
        self.requested_by = by
        self.stop_reason = None
        transition = self._set_state(RecordingState.ASKING, f"requested by {by}")
        return self._maybe_all_agreed() or transition

    def consent(self, participant: str) -> Transition | None:
        self._require_asked(participant)
        self.answers[participant] = Answer.AGREED
        return self._maybe_all_agreed()

    def decline(self, participant: str) -> Transition:
        self._require_asked(participant)
        self.answers[participant] = Answer.DECLINED
        return self._stop(f"declined by {participant}")

    def stop(self, by: str) -> Transition:
        if self.state not in (
            RecordingState.ASKING,
            RecordingState.RECORDING,
            RecordingState.PAUSED,
        ):
            raise ConsentError(f"room {self.room_id}: nothing to stop (state {self.state})")
        return self._stop(f"stopped by {by}")

    def join(self, participant: str) -> Transition | None:
        """A participant entered the room; while a request is open they must be asked."""
        if self.state in (RecordingState.IDLE, RecordingState.STOPPED):
            return None
        if self.answers.get(participant) is Answer.AGREED:
            return None
        if participant in self.agreed_before_leaving:
            # A reconnect (reload, network change): their agreement to this request stands.
            self.agreed_before_leaving.discard(participant)
            self.answers[participant] = Answer.AGREED
            return self._maybe_all_agreed()
        self.answers[participant] = Answer.PENDING
        if self.state is RecordingState.RECORDING:
            return self._set_state(RecordingState.PAUSED, f"{participant} joined")
        return None

    def abort(self, reason: str) -> Transition:
        """Stop for a reason that is no person's answer (a failure, the consultation ended)."""
        if self.state not in (
            RecordingState.ASKING,
            RecordingState.RECORDING,
            RecordingState.PAUSED,
        ):
            raise ConsentError(f"room {self.room_id}: nothing to stop (state {self.state})")
        return self._stop(reason)

    def everyone_away(self) -> None:
        """This node took the room over (a restart, a move): nobody is present yet.

        Each agreement to the current request stands for that person's return, as
        after a reconnect; whoever had not answered is asked again when they return.
        The state stays: a running recording goes on for those who come back.
        """
        for participant, answer in self.answers.items():
            if answer is Answer.AGREED:
                self.agreed_before_leaving.add(participant)
        self.answers = {}

    def leave(self, participant: str) -> Transition | None:
        answer = self.answers.pop(participant, None)
        if answer is None:
            return None
        if answer is Answer.AGREED:
            self.agreed_before_leaving.add(participant)
        if self.state in (RecordingState.ASKING, RecordingState.PAUSED):
            if not self.answers:
                return self._stop("everyone left")
            return self._maybe_all_agreed()
        return None

    # -- internals --------------------------------------------------------------------

    def _require_asked(self, participant: str) -> None:
        if self.state not in (
            RecordingState.ASKING,
            RecordingState.PAUSED,
            RecordingState.RECORDING,
        ):
            raise ConsentError(
                f"room {self.room_id}: no recording request is open (state {self.state})"
            )
        if participant not in self.answers:
            raise ConsentError(f"room {self.room_id}: {participant} was not asked to consent")

    def _maybe_all_agreed(self) -> Transition | None:
        if self.state not in (RecordingState.ASKING, RecordingState.PAUSED):
            return None
        if all(a is Answer.AGREED for a in self.answers.values()):
            return self._set_state(RecordingState.RECORDING, "everyone agreed")
        return None

    def _stop(self, reason: str) -> Transition:
        self.stop_reason = reason
        return self._set_state(RecordingState.STOPPED, reason)

    def _set_state(self, new: RecordingState, reason: str) -> Transition:
        old = self.state
        if new not in _ALLOWED[old]:
            raise ConsentError(f"room {self.room_id}: recording cannot go from {old} to {new}")
        self.state = new
        logger.info("room %s recording: %s -> %s (%s)", self.room_id, old, new, reason)
        return Transition(old, new, reason)
