"""Connection quality through the real server with aiortc participants on a good link.

Each participant's feedback (REMB, receiver reports) feeds the server's estimate of
their link; with nothing constrained every camera is forwarded in full, every page is
told so (``link_quality``, typed in the protocol), and /metrics counts connections by
quality and video subscriptions by state.
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
                assert report["you"] == "good", report
                seen = {p["participant_id"]: p for p in report["participants"]}
                assert all(p["video"] == "full" and p["link"] == "good" for p in seen.values())
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
                assert s.estimate_bps is None, s  # no congestion on a good link: no limit
                assert s.sent_bps > 0 and s.loss < 0.05, s
                assert sorted(v.value for v in s.videos.values()) == ["full", "full"], s
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                async with http.get(server.base_url + "/metrics") as resp:
                    text = await resp.text()
            assert 'seoulbridge_subscriber_links{node="' in text
            lines = [line for line in text.splitlines() if not line.startswith("#")]
            good = [line for line in lines if "subscriber_links" in line and '"good"' in line]
            full = [line for line in lines if "video_subscriptions" in line and '"full"' in line]
            assert good and float(good[0].split()[-1]) == 3.0, good
            assert full and float(full[0].split()[-1]) == 6.0, full
        finally:
            await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
