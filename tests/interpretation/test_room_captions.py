"""The captions room extension: real CaptionService and Vosk, audio taps that fail on purpose.

The signaling side (room, participant, messenger) is plain data here; the media
side hands out :class:`FakeTap` objects, so a tap can break mid-stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interpretation.events import CaptionEvent, Untranslated
from interpretation.service import CaptionService
from interpretation.speaker import CaptionLimits, SpeakerState
from kernel.media_types import PublicationRef
from kernel.roles import Role
from signaling.live import LiveRoom, Participant, ParticipantState
from signaling.protocol import Caption, CaptionStatus, ServerMessage
from signaling.rooms import RoomRecord
from signaling.tokens import JoinClaims
from tests.interpretation.fakes import FakeTap
from tests.interpretation.speech_fixture import wav_pcm
from web.room_captions import CaptionsExtension, to_wire

pytestmark = pytest.mark.timeout(90)


class Messenger:
    """A ``RoomMessenger`` that keeps what would go to the pages."""

    def __init__(self) -> None:
        self.sent: list[ServerMessage] = []

    async def send(self, participant: Participant, message: ServerMessage) -> None:
        self.sent.append(message)

    async def broadcast(self, room: LiveRoom, message: ServerMessage) -> None:
        self.sent.append(message)

    def captions(self) -> list[Caption]:
        return [m for m in self.sent if isinstance(m, Caption)]


class RoomMedia:
    """Hands out the next prepared tap for each ``audio_tap`` call."""

    def __init__(self, taps: list[FakeTap]) -> None:
        self._next: Iterator[FakeTap] = iter(taps)
        self.handed: list[FakeTap] = []

    def audio_tap(self, publication_id: str) -> FakeTap:
        tap = next(self._next)
        self.handed.append(tap)
        return tap


class Media:
    def __init__(self, room_id: str, taps: list[FakeTap]) -> None:
        self.room = RoomMedia(taps)
        self._room_id = room_id

    def get(self, room_id: str) -> RoomMedia | None:
        return self.room if room_id == self._room_id else None


def _room(room_id: str) -> LiveRoom:
    room = LiveRoom(record=RoomRecord(id=room_id, title="t", created_at=0.0), media=None)  # type: ignore[arg-type]
    for pid, role, name, lang in [
        ("p-kim", Role.COUNSELOR, "상담사 김", "ko"),
        ("p-sato", Role.RESIDENT, "Sato", "ja"),
    ]:
        claims = JoinClaims(pid, room_id, role, name, lang, expires_at=time.time() + 600)  # type: ignore[arg-type]
        room.participants[pid] = Participant(
            claims, sid=f"sid-{pid}", state=ParticipantState.IN_ROOM
        )
    return room


async def _until(condition: object, timeout: float = 60.0) -> None:
    assert callable(condition)
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met")


@pytest.fixture
async def service(tmp_path: Path) -> CaptionService:
    svc = CaptionService(
        tmp_path / "data", workers=2, limits=CaptionLimits(flush_s=1.0, close_bound_s=1.0)
    )
    await asyncio.to_thread(svc.models.get, "ko")
    yield svc  # type: ignore[misc]
    await svc.aclose()


@pytest.fixture
def pcm(korean_speech: Path) -> bytes:
    return wav_pcm(korean_speech)


async def test_a_speaker_whose_tap_breaks_is_restarted_once(
    service: CaptionService, pcm: bytes
) -> None:
    room = _room("room-x")
    broken, healthy = FakeTap(pcm, fail_after=5), FakeTap(pcm)
    media = Media(room.id, [broken, healthy])
    messenger = Messenger()
    ext = CaptionsExtension(service, messenger, media)
    try:
        await ext.room_opened(room)
        for p in room.participants.values():
            await ext.participant_entered(room, p)
        await ext.publication_added(room, PublicationRef("p-kim", "audio"))
        await _until(lambda: any(c.final for c in messenger.captions()))
        assert media.room.handed == [broken, healthy] and broken.closed
        pipeline = ext.pipeline(room.id)
        assert pipeline is not None
        status = pipeline.status("p-kim")
        assert status is not None and status.state is not SpeakerState.FAILED
        await _until(lambda: ext.task_names() == [])
        await ext.room_closed(room, final=True)
        assert healthy.closed
    finally:
        await ext.aclose()
    # only typed messages went out: captions built by to_wire, and the room's caption status
    assert messenger.sent and all(isinstance(m, Caption | CaptionStatus) for m in messenger.sent)
    assert any(isinstance(m, CaptionStatus) for m in messenger.sent)
    caption = next(c for c in messenger.captions() if c.final)
    assert caption.speaker_name == "상담사 김" and caption.language == "ko"


async def test_a_speaker_failing_again_stays_off_until_they_publish_again(
    service: CaptionService, pcm: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    room = _room("room-y")
    taps = [FakeTap(pcm, fail_after=5), FakeTap(pcm, fail_after=5), FakeTap(pcm)]
    media = Media(room.id, taps)
    messenger = Messenger()
    ext = CaptionsExtension(service, messenger, media)
    try:
        await ext.room_opened(room)
        await ext.publication_added(room, PublicationRef("p-kim", "audio"))
        pipeline = ext.pipeline(room.id)
        assert pipeline is not None

        def given_up() -> bool:
            status = pipeline.status("p-kim")
            return (
                len(media.room.handed) == 2
                and status is not None
                and status.state is SpeakerState.FAILED
                and taps[1].closed
            )

        await _until(given_up)
        await asyncio.sleep(0.3)
        assert len(media.room.handed) == 2  # no third tap: one restart only
        status = pipeline.status("p-kim")
        assert status is not None and status.error is not None
        assert "p-kim in room room-y" in str(status.error)
        assert any(
            r.levelno == logging.ERROR and "captions stay off" in r.getMessage()
            for r in caplog.records
        )
        assert not messenger.captions()
        # publishing again starts afresh
        await ext.publication_added(room, PublicationRef("p-kim", "audio"))
        await _until(lambda: any(c.final for c in messenger.captions()))
    finally:
        await ext.aclose()
    assert all(t.closed for t in taps)
    assert ext.task_names() == []


def test_to_wire_is_the_one_conversion() -> None:
    event = CaptionEvent(
        room_id="room-z",
        id="p-1",
        speaker_id="p",
        speaker_name="Kim",
        language="ko",
        text="국적 상담",
        final=True,
        start=0.5,
        end=2.0,
        ts=1.0,
        translations={"ja": "国籍相談"},
        speaker_role=Role.COUNSELOR,
        untranslated={"en": Untranslated.NOT_INSTALLED},
    )
    assert not hasattr(event, "type") and not hasattr(event, "model_dump")
    wire = to_wire(event)
    assert wire.type == "caption"
    assert wire.model_dump(exclude={"type"}) == {
        "id": "p-1",
        "speaker_id": "p",
        "speaker_name": "Kim",
        "language": "ko",
        "text": "국적 상담",
        "final": True,
        "start": 0.5,
        "end": 2.0,
        "ts": 1.0,
        "translations": {"ja": "国籍相談"},
        "speaker_role": Role.COUNSELOR,
        "kind": "speech",
        "pending": [],
        "untranslated": {"en": "not_installed"},
    }


class Switchable:
    """``Speaking`` as ``web.room_interpretation`` answers it: p-sato speaks their own
    Japanese until switched to interpreting into Korean."""

    def __init__(self) -> None:
        self.interpreting: set[str] = set()

    def speaking(self, room_id: str, participant: Participant) -> tuple[str, bool]:
        if participant.id in self.interpreting:
            return "ko", True
        return participant.claims.language, False


async def test_someone_uncaptioned_is_captioned_once_they_speak_a_language_with_a_model(
    service: CaptionService, pcm: bytes
) -> None:
    """An interpreter whose own language has no speech model switches to channel mode
    into Korean: their audio, published while it could not be captioned, is captioned
    from then on, labelled interpretation (the channel browser test met this)."""
    room = _room("room-w")
    media = Media(room.id, [FakeTap(pcm), FakeTap(pcm)])
    messenger = Messenger()
    speaking = Switchable()
    ext = CaptionsExtension(service, messenger, media, speaking=speaking)
    try:
        await ext.room_opened(room)
        for p in room.participants.values():
            await ext.participant_entered(room, p)
        await ext.publication_added(room, PublicationRef("p-sato", "audio"))
        await asyncio.sleep(0.5)
        assert not messenger.captions()  # no Japanese model: nothing to caption yet
        speaking.interpreting.add("p-sato")
        await ext.speaking_changed(room, room.participants["p-sato"])
        await _until(lambda: any(c.final for c in messenger.captions()))
        caption = next(c for c in messenger.captions() if c.final)
        assert caption.speaker_id == "p-sato" and caption.language == "ko"
        assert caption.kind == "interpretation"
    finally:
        await ext.aclose()
