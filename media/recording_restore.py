"""Taking a room's recordings over from an earlier process (a restart, a crash, a move).

``read_disk`` (blocking) loads the manifest and repairs what a killed process
left: open tracks get their counts read back from the files, recordings that
will not go on are marked ``interrupted``. ``consent_from`` rebuilds the consent
rules from the stored snapshot with everyone away until they return.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from media.consent import ConsentMachine
from media.recording_files import INTERRUPTED, RecordingStorage
from media.recording_model import Manifest, ManifestError, RecordingSnapshot

logger = logging.getLogger(__name__)


@dataclass
class DiskState:
    manifest: Manifest | None
    #: the highest segment number any file in the directory has
    last_segment: int
    #: the manifest was repaired and should be written back
    changed: bool


def read_disk(storage: RecordingStorage, directory: Path, continuing: int) -> DiskState:
    """The room's manifest as an earlier process left it; ``continuing`` goes on (not stopped)."""
    last_on_disk = storage.last_segment_on_disk(directory)
    try:
        manifest = storage.read_manifest(directory)
    except ManifestError as exc:
        moved = storage.set_aside(directory)
        logger.error("%s: %s; kept as %s, a new manifest is started", directory, exc, moved)
        return DiskState(None, last_on_disk, False)
    if manifest is None:
        return DiskState(None, last_on_disk, False)
    changed = storage.recover(directory, manifest)
    for recording in manifest.recordings:
        if recording.stopped_at is None and recording.number != continuing:
            recording.stopped_at = recording.ended_at or recording.started_at
            recording.stop_reason = recording.stop_reason or INTERRUPTED
            changed = True
    return DiskState(manifest, max(last_on_disk, manifest.last_segment()), changed)


def consent_from(room_id: str, snapshot: RecordingSnapshot) -> ConsentMachine:
    """The consent rules as they were, with nobody present yet (``everyone_away``)."""
    consent = ConsentMachine(
        room_id,
        state=snapshot.state,
        answers=dict(snapshot.answers),
        requested_by=snapshot.requested_by,
        stop_reason=snapshot.stop_reason,
        agreed_before_leaving=set(snapshot.agreed_before_leaving),
    )
    consent.everyone_away()
    return consent
