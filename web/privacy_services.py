"""The privacy services of one server, as the composition root builds them."""

from __future__ import annotations

from dataclasses import dataclass

from web.retention import Purger, RetentionTask
from web.room_identity import RoomIdentity
from web.subject import ConsultationRecords


@dataclass(frozen=True)
class Privacy:
    purger: Purger
    retention: RetentionTask
    records: ConsultationRecords
    identity: RoomIdentity
