"""An API flood during a call, and the video gaps it causes: shared by the test and the bench.

``call_under_flood`` runs a two-person call on a real server *process* (so the flood's
cost lands on the server's event loop, not on the test's), measures the largest gap
between video frames a participant receives, first quietly and then while many clients
ask ``GET /api/availability`` for two months with changing time zones and dates (no
cache can answer them all) and try to sign in. Only stable interfaces are used
(``NodeProcess``, ``seoulbridge room create``, ``RtcParticipant``), so the same code
measures an older checkout too.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import aiohttp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.support.calls import tokens_from_cli
from tests.support.node_process import REPO, NodeProcess
from tests.support.rtc_client import RtcParticipant

ZONES = (
    "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Asia/Seoul", "Australia/Sydney",
    "America/Los_Angeles", "Europe/Moscow", "Asia/Shanghai", "America/Sao_Paulo", "UTC",
)  # fmt: skip


class GapRecorder(RtcParticipant):
    """A participant that keeps the arrival time of every video frame, by sender."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.video_times: dict[str, list[float]] = collections.defaultdict(list)

    async def _read(self, mid: str | None, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            owner = self.mid_owner.get(mid or "")
            if owner is None:
                continue
            self.frames[owner][track.kind] += 1
            if track.kind == "video":
                self.video_times[owner].append(time.monotonic())


def machine_load() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def worst_gap(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    points = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))


@dataclass
class FloodResult:
    quiet_gap_s: float
    flood_gap_s: float
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    requests: int = 0

    @property
    def ratio(self) -> float:
        return self.flood_gap_s / self.quiet_gap_s if self.quiet_gap_s else float("inf")

    def summary(self) -> str:
        return (
            f"worst video gap: quiet {self.quiet_gap_s:.3f} s, under the API flood "
            f"{self.flood_gap_s:.3f} s (x{self.ratio:.1f}); {self.requests} requests: "
            f"{dict(sorted(self.statuses.items()))}"
        )


async def _flood(
    base_url: str, *, seconds: float, workers: int, seed: int
) -> tuple[collections.Counter[int], int]:
    rng = random.Random(seed)
    statuses: collections.Counter[int] = collections.Counter()
    deadline = time.monotonic() + seconds
    today = date.today()
    sent = 0

    async def worker(http: aiohttp.ClientSession, n: int) -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            sent += 1
            if n % 6 == 5:
                request = http.post(
                    base_url + "/api/staff/login",
                    json={"username": f"nobody{rng.randrange(10**6)}", "password": "wrong-pass"},
                )
            else:
                first = today + timedelta(days=rng.randrange(0, 20))
                request = http.get(
                    base_url + "/api/availability",
                    params={"topic": "nationality", "language": rng.choice(["ja", "ko", "en"]),
                            "timezone": rng.choice(ZONES), "from": first.isoformat(),
                            "days": "62"},
                )  # fmt: skip
            try:
                async with request as resp:
                    await resp.read()
                    statuses[resp.status] += 1
            except aiohttp.ClientError:
                statuses[0] += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(worker(http, n) for n in range(workers)))
    return statuses, sent


async def flood_from_another_process(
    base_url: str, *, seconds: float, workers: int, seed: int
) -> tuple[collections.Counter[int], int]:
    """``_flood`` in a child process: its own CPU cost must not delay the call's clients."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.robustness.flood", base_url, str(seconds), str(workers),
        str(seed), cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    assert proc.returncode == 0, out
    done = json.loads(out.decode().strip().splitlines()[-1])
    return collections.Counter({int(k): v for k, v in done["statuses"].items()}), done["sent"]


async def call_under_flood(
    node: NodeProcess,
    *,
    quiet_s: float = 4.0,
    flood_s: float = 6.0,
    workers: int = 24,
    seed: int = 7,
) -> FloodResult:
    """A counselor and an interpreter in a call on ``node`` (running); the gaps."""
    out = await asyncio.to_thread(
        node.cli,
        "room", "create", "--title", "Flood",
        "--participant", "counselor:Counselor Kim:ko",
        "--participant", "interpreter:Sato:ja",
    )  # fmt: skip
    room_id, tokens = tokens_from_cli(out)
    sender = GapRecorder(node.base_url, room_id, tokens["counselor"])
    viewer = GapRecorder(node.base_url, room_id, tokens["interpreter"])
    try:
        for person in (sender, viewer):
            await person.connect()
            await person.wait_for("welcome")
            await person.send({"type": "join"})
            await person.wait_for("joined")
        assert sender.you is not None
        sender_id = sender.you["id"]
        await viewer.wait_frames(sender_id, "video", 30, timeout=30)
        started = time.monotonic()
        await asyncio.sleep(quiet_s)
        middle = time.monotonic()
        statuses, sent = await flood_from_another_process(
            node.base_url, seconds=flood_s, workers=workers, seed=seed
        )
        ended = time.monotonic()
        await asyncio.sleep(0.5)
        times = viewer.video_times[sender_id]
        return FloodResult(
            quiet_gap_s=worst_gap(times, started, middle),
            flood_gap_s=worst_gap(times, middle, ended),
            statuses=statuses,
            requests=sent,
        )
    finally:
        for person in (sender, viewer):
            await person.close()


_LAG_LINE = re.compile(
    r'seoulbridge_event_loop_lag_seconds_(count|sum|bucket)(\{le="([^"]+)"\})? (\S+)'
)


def lag_histogram(metrics_text: str) -> dict[str, float]:
    """``seoulbridge_event_loop_lag_seconds``: its count, sum and buckets (le -> count)."""
    found: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = _LAG_LINE.match(line)
        if match:
            name = match.group(1) if match.group(1) != "bucket" else f"le={match.group(3)}"
            found[name] = float(match.group(4))
    return found


if __name__ == "__main__":
    url, secs, n, seed_ = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    counts, total = asyncio.run(_flood(url, seconds=secs, workers=n, seed=seed_))
    print(json.dumps({"statuses": counts, "sent": total}))
