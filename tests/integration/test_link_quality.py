"""Connection quality through the real server with aiortc participants.

Each participant's feedback (REMB, receiver reports) reaches the server's estimate of
their link; every page is told what it gets of each camera (``link_quality``, typed in
the protocol: the test client rejects anything off it), and /metrics counts every
connection by quality and every forwarded camera by state. What adaptation does on a
limited link is tests/browser/test_poor_link.py and the policy's unit tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.calls import enter_call, media_everywhere
from tests.support.rtc_client import RtcParticipant
from tests.support.server import running_server
from web.appkeys import MEDIA_ROOMS

pytestmark = pytest.mark.timeout(90)


async def _latest_report(viewer: RtcParticipant, others: set[str]) -> dict[str, Any]:
    """The last ``link_quality`` the viewer got, once it names everyone else's camera."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        reports = viewer.received("link_quality")
        if reports:
            last = reports[-1]
            named = {p["participant_id"] for p in last["participants"] if p["video"]}
            if named == others:
                return last
        assert asyncio.get_running_loop().time() < deadline, reports[-3:]
        await asyncio.sleep(0.2)


async def test_a_good_link_is_reported_good_with_every_camera_in_full(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    token = "m" * 32
    async with running_server(data_dir, redis_url, metrics_token=token) as server:
        room_id, counselor, interpreter, resident = await server.consultation()
        people = [counselor, interpreter, resident]
        try:
            await enter_call(counselor, interpreter, resident)
            await media_everywhere(people)
            ids = {id(p): p.you["id"] for p in people if p.you}
            for viewer in people:
                others = {ids[id(o)] for o in people if o is not viewer}
                report = await _latest_report(viewer, others)
                assert report["you"] in ("good", "weak", "poor"), report
                for p in report["participants"]:
                    assert p["link"] in ("good", "weak", "poor"), report
                    assert p["video"] in ("full", "reduced", "paused"), report
            room = server.app[MEDIA_ROOMS].get(room_id)
            assert room is not None
            deadline = asyncio.get_running_loop().time() + 15
            while True:  # each browser's REMB comes within a second or two of its media
                stats = {s.participant_id: s for s in room.link_stats()}
                if all(s.remb_bps is not None for s in stats.values()):
                    break
                assert asyncio.get_running_loop().time() < deadline, stats
                await asyncio.sleep(0.2)
            assert set(stats) == set(ids.values())
            for s in stats.values():
                assert s.sent_bps > 0 and len(s.videos) == 2, s
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                async with http.get(server.base_url + "/metrics") as resp:
                    text = await resp.text()
            lines = [line for line in text.splitlines() if not line.startswith("#")]

            def total(name: str) -> float:
                return sum(float(line.split()[-1]) for line in lines if line.startswith(name + "{"))

            # Every connection has a quality and every forwarded camera a state (which
            # ones depends on the machine: a loaded one makes aiortc's receivers congest).
            assert total("seoulbridge_subscriber_links") == 3.0, lines
            assert total("seoulbridge_video_subscriptions") == 6.0, lines
        finally:
            await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
