from __future__ import annotations

import pytest

from media.consent import ConsentError, ConsentMachine, RecordingState


def machine() -> ConsentMachine:
    return ConsentMachine("room-1")


def test_recording_begins_only_when_everyone_agreed() -> None:
    m = machine()
    t = m.start("counselor", ["counselor", "resident", "interpreter"])
    assert (t.old, t.new) == (RecordingState.IDLE, RecordingState.ASKING)
    assert not m.writing_allowed
    assert m.consent("resident") is None
    assert m.pending == ["interpreter"]
    t2 = m.consent("interpreter")
    assert t2 is not None and t2.new is RecordingState.RECORDING
    assert m.writing_allowed


def test_alone_the_counselor_records_at_once() -> None:
    m = machine()
    assert m.start("counselor", []).new is RecordingState.RECORDING


def test_decline_stops_while_asking_and_while_recording() -> None:
    m = machine()
    m.start("counselor", ["resident"])
    assert m.decline("resident").new is RecordingState.STOPPED
    assert m.stop_reason == "declined by resident"
    assert not m.writing_allowed
    m.start("counselor", ["resident"])
    m.consent("resident")
    assert m.decline("resident").new is RecordingState.STOPPED  # consent withdrawn


def test_late_joiner_pauses_until_they_agree() -> None:
    m = machine()
    m.start("counselor", ["resident"])
    m.consent("resident")
    t = m.join("interpreter")
    assert t is not None and t.new is RecordingState.PAUSED
    assert not m.writing_allowed
    t2 = m.consent("interpreter")
    assert t2 is not None and t2.new is RecordingState.RECORDING


def test_late_joiner_decline_stops() -> None:
    m = machine()
    m.start("counselor", ["resident"])
    m.consent("resident")
    m.join("interpreter")
    assert m.decline("interpreter").new is RecordingState.STOPPED


def test_joiner_while_asking_is_asked_too() -> None:
    m = machine()
    m.start("counselor", ["resident"])
    assert m.join("interpreter") is None
    m.consent("resident")
    assert m.state is RecordingState.ASKING
    assert m.consent("interpreter") is not None
    assert m.state is RecordingState.RECORDING


def test_leaving_pending_participant_unblocks() -> None:
    m = machine()
    m.start("counselor", ["resident", "interpreter"])
    m.consent("resident")
    t = m.leave("interpreter")
    assert t is not None and t.new is RecordingState.RECORDING


def test_illegal_actions_raise() -> None:
    m = machine()
    with pytest.raises(ConsentError):
        m.consent("resident")
    with pytest.raises(ConsentError):
        m.stop("counselor")
    m.start("counselor", ["resident"])
    with pytest.raises(ConsentError, match="already asking"):
        m.start("counselor", ["resident"])
    with pytest.raises(ConsentError, match="was not asked"):
        m.consent("stranger")
    m.stop("counselor")
    with pytest.raises(ConsentError):
        m.decline("resident")
    assert m.start("counselor", ["resident"]).new is RecordingState.ASKING


def test_a_reconnect_keeps_an_agreement_to_the_current_request() -> None:
    m = machine()
    m.start("counselor", ["counselor", "resident", "interpreter"])
    m.consent("resident")
    m.consent("interpreter")
    assert m.state is RecordingState.RECORDING
    # A reload is a leave then a join: no pause, nobody asked again.
    assert m.leave("interpreter") is None
    assert m.join("interpreter") is None
    assert m.state is RecordingState.RECORDING and m.pending == []
    assert m.leave("counselor") is None
    assert m.join("counselor") is None
    assert m.state is RecordingState.RECORDING
    # Someone who never answered is asked again, and recording pauses for a newcomer.
    t = m.join("newcomer")
    assert t is not None and t.new is RecordingState.PAUSED


def test_an_agreement_does_not_carry_over_to_a_new_request() -> None:
    m = machine()
    m.start("counselor", ["counselor", "resident"])
    m.consent("resident")
    m.leave("resident")
    m.stop("counselor")
    m.start("counselor", ["counselor"])
    assert m.state is RecordingState.RECORDING  # alone, the counselor records
    t = m.join("resident")
    assert t is not None and t.new is RecordingState.PAUSED
    assert m.pending == ["resident"]


def test_abort_stops_for_a_reason_that_is_nobodys_answer() -> None:
    m = machine()
    m.start("counselor", ["resident"])
    m.consent("resident")
    t = m.abort("failed: the disk is full")
    assert (t.old, t.new, t.reason) == (
        RecordingState.RECORDING,
        RecordingState.STOPPED,
        "failed: the disk is full",
    )
    with pytest.raises(ConsentError, match="nothing to stop"):
        m.abort("again")


def test_after_a_takeover_agreements_stand_for_each_return() -> None:
    m = machine()
    m.start("counselor", ["counselor", "resident"])
    m.consent("resident")
    m.everyone_away()  # another process took the room over: nobody is present yet
    assert m.state is RecordingState.RECORDING and m.answers == {}
    assert m.join("resident") is None and m.join("counselor") is None
    assert m.state is RecordingState.RECORDING and m.pending == []
    t = m.join("interpreter")  # never asked: a late joiner
    assert t is not None and t.new is RecordingState.PAUSED


def test_after_a_takeover_a_pause_waits_only_for_those_present() -> None:
    m = machine()
    m.start("counselor", ["counselor", "resident"])
    m.consent("resident")
    m.join("interpreter")  # paused, waiting for the interpreter
    m.everyone_away()
    assert m.state is RecordingState.PAUSED
    # The counselor is back first: everyone present agreed, so it goes on.
    t = m.join("counselor")
    assert t is not None and t.new is RecordingState.RECORDING
    # The interpreter comes back still unasked-for: paused again and asked again.
    t = m.join("interpreter")
    assert t is not None and t.new is RecordingState.PAUSED and m.pending == ["interpreter"]
