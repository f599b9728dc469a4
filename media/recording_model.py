"""What a room's recordings are, as data: the manifest on disk and the live state in a store.

``manifest.json`` (format 2) is the record: every recording of the room (one per
request that reached "recording"), each with its consent log, the people in it
and its segments; a segment is one continuous run of writing (it ends at a
pause, a stop, a restart or a failure) with one file per track. It is parsed
once here; nothing past this module handles the raw JSON.

``RecordingSnapshot`` is what a restart or another node needs to carry on
(consent state, the open request's log, counters); ``RecordingStateStore`` is
the seam the composition root fills (Redis).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from kernel.media_types import Kind
from media.consent import Answer, RecordingState
from media.errors import MediaError

MANIFEST_FORMAT = 2


class ManifestError(MediaError):
    """A manifest that cannot be read."""


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class _Model(BaseModel):
    model_config = {"extra": "ignore"}


class TrackFile(_Model):
    """One file: one publication during (part of) one segment."""

    file: str
    publication_id: str
    participant_id: str
    kind: Kind
    codec: str
    #: when its first frame was handed to the writer (the file's time zero)
    started_at: datetime
    ended_at: datetime | None = None
    frames: int = 0
    duration_s: float = 0.0
    #: counts read back from the file because its writer never finished (a crash)
    recovered: bool = False
    error: str | None = None


class Segment(_Model):
    number: int
    started_at: datetime
    ended_at: datetime | None = None
    #: "paused", "stopped by …", "the server let go of the room", "failed: …", "interrupted"
    end_reason: str | None = None
    tracks: list[TrackFile] = Field(default_factory=list)


ConsentAnswer = Literal["agreed", "declined"]


class ConsentEntry(_Model):
    """One answer to one request: who, when, agreed or declined."""

    participant_id: str
    answer: ConsentAnswer
    at: datetime


class Person(_Model):
    name: str
    role: str


class Recording(_Model):
    """One request that everyone agreed to: from the first agreement-complete to its stop."""

    number: int
    requested_by: str | None = None
    requested_at: datetime | None = None
    started_at: datetime
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    consents: list[ConsentEntry] = Field(default_factory=list)
    people: dict[str, Person] = Field(default_factory=dict)
    segments: list[Segment] = Field(default_factory=list)

    def tracks(self) -> list[TrackFile]:
        return [t for s in self.segments for t in s.tracks]

    @property
    def ended_at(self) -> datetime | None:
        ends = [s.ended_at for s in self.segments if s.ended_at is not None]
        return self.stopped_at or (max(ends) if ends else None)


class Manifest(_Model):
    format: Literal[2] = 2
    session_id: str
    room_id: str
    recordings: list[Recording] = Field(default_factory=list)

    def recording(self, number: int) -> Recording:
        for recording in self.recordings:
            if recording.number == number:
                return recording
        have = ", ".join(str(r.number) for r in self.recordings) or "none"
        raise ManifestError(f"room {self.room_id} has no recording {number} (it has: {have})")

    def last_segment(self) -> int:
        return max((s.number for r in self.recordings for s in r.segments), default=0)


class RecordingSnapshot(_Model):
    """The live recording state of one room, as kept in the store between processes."""

    room_id: str
    state: RecordingState = RecordingState.IDLE
    requested_by: str | None = None
    requested_at: datetime | None = None
    answers: dict[str, Answer] = Field(default_factory=dict)
    agreed_before_leaving: list[str] = Field(default_factory=list)
    stop_reason: str | None = None
    #: the failed write that stopped the recording (its message), until the next one starts
    failure: str | None = None
    #: the open request's log (bounded)
    consents: list[ConsentEntry] = Field(default_factory=list)
    people: dict[str, Person] = Field(default_factory=dict)
    #: the number of the request's recording once it started (0: none yet)
    recording: int = 0
    recording_started_at: datetime | None = None
    last_recording: int = 0
    last_segment: int = 0


class RecordingStateStore(Protocol):
    """Where a room's ``RecordingSnapshot`` lives while the consultation goes on."""

    async def load(self, room_id: str) -> RecordingSnapshot | None: ...

    async def save(self, snapshot: RecordingSnapshot) -> None: ...

    async def delete(self, room_id: str) -> None: ...


# -- reading manifests --------------------------------------------------------------------


def parse_manifest(text: str) -> Manifest:
    """A manifest from its JSON (format 2, or the single-recording format 1 of older files)."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ManifestError("a manifest is a JSON object")
        if raw.get("format") == MANIFEST_FORMAT:
            return Manifest.model_validate(raw)
        return _from_format_1(_V1.model_validate(raw))
    except (ValueError, ValidationError) as exc:
        raise ManifestError(f"unreadable manifest: {exc}") from exc


class _V1Track(_Model):
    file: str
    publication_id: str
    participant_id: str
    kind: Kind
    codec: str
    segment: int
    started_at: datetime
    ended_at: datetime | None = None
    frames: int = 0


class _V1(_Model):
    session_id: str
    room_id: str
    requested_by: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    consents: dict[str, datetime] = Field(default_factory=dict)
    tracks: list[_V1Track] = Field(default_factory=list)


def _from_format_1(old: _V1) -> Manifest:
    """Format 1 held one request's files; every segment of it becomes one recording's."""
    manifest = Manifest(session_id=old.session_id, room_id=old.room_id)
    if not old.tracks:
        return manifest
    by_segment: dict[int, list[_V1Track]] = {}
    for track in old.tracks:
        by_segment.setdefault(track.segment, []).append(track)
    segments = []
    for number, tracks in sorted(by_segment.items()):
        starts = [t.started_at for t in tracks]
        ends = [t.ended_at for t in tracks if t.ended_at is not None]
        segments.append(
            Segment(
                number=number,
                started_at=min(starts),
                ended_at=max(ends) if ends else None,
                tracks=[
                    TrackFile(
                        file=t.file,
                        publication_id=t.publication_id,
                        participant_id=t.participant_id,
                        kind=t.kind,
                        codec=t.codec,
                        started_at=t.started_at,
                        ended_at=t.ended_at,
                        frames=t.frames,
                        duration_s=(t.ended_at - t.started_at).total_seconds()
                        if t.ended_at
                        else 0.0,
                    )
                    for t in tracks
                ],
            )
        )
    started = old.started_at or segments[0].started_at
    manifest.recordings.append(
        Recording(
            number=1,
            requested_by=old.requested_by,
            started_at=started,
            stopped_at=old.stopped_at,
            stop_reason=old.stop_reason,
            consents=[
                ConsentEntry(participant_id=p, answer="agreed", at=at)
                for p, at in sorted(old.consents.items(), key=lambda kv: kv[1])
            ],
            segments=segments,
        )
    )
    return manifest


def track_end(track: TrackFile) -> datetime:
    return track.ended_at or track.started_at + timedelta(seconds=track.duration_s)
