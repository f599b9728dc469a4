"""The bounded fuzzer in ``make test``: ~30 s of random and mutated protocol messages and raw
engine.io frames (fixed seed) against a real server; nothing escapes, and it still works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signaling.protocol import Role
from tests.robustness.fuzzing import fuzz
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server

# solo: the Makefile runs this alone (a timed fuzzing budget
# would measure another test process as well)
pytestmark = [pytest.mark.timeout(120), pytest.mark.solo]

SEED = 20261201
SECONDS = float(os.environ.get("SEOULBRIDGE_FUZZ_SECONDS", "30"))


async def test_fuzzing_the_signaling_boundary_escapes_nothing(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        report = await fuzz(server, seconds=SECONDS, seed=SEED)
        print(report.summary())
        assert report.messages > 100 and report.frames > 100, report.summary()
        assert report.escapes.total == 0, (report.summary(), report.escapes)
        # Still serving: a new consultation connects and joins.
        room_id, (token,) = await server.room_with((Role.COUNSELOR, "After", "ko"))
        after = RtcParticipant(server.base_url, room_id, token, publish=False)
        try:
            await after.connect()
            await after.send({"type": "join"})
            await after.wait_for("joined")
        finally:
            await after.close()
