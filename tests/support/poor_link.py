"""A three-party call in real Chromium pages with the resident behind a poor link.

The server runs as its own process bound to the host side of a veth pair
(``tests.support.netns``); the counselor's and the interpreter's pages run in
this namespace (a good network), the resident's Chromium runs inside the
namespace through a wrapper script, so everything it sends and receives
crosses the veth, where ``Netns.limit`` puts a token bucket each way. Used by
``tests/browser/test_poor_link.py`` (assertions) and ``bench/poor_link.py``
(figures); both read the pages' ``getStats()`` through ``Snapshot``.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Server
from tests.interpretation.browser_support import admit_all, join, open_page, until
from tests.support.netns import Netns
from tests.support.node_process import NodeProcess

ROLES = ("counselor", "interpreter", "resident")

# Per remote participant, the inbound-rtp counters of the latest offer's mids.
_SNAPSHOT_JS = """async () => {
  const S = window.seoulbridge;
  const by = {};
  const pc = S && S.pc;
  if (pc) {
    (await pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      const info = S.trackMap[r.mid];
      if (!info) return;
      const o = (by[info.participant_id] ||= {});
      if (r.kind === "video") {
        o.frames = r.framesDecoded || 0;
        o.width = r.frameWidth || 0;
        o.height = r.frameHeight || 0;
        o.freezes = r.freezeCount || 0;
        o.received = r.framesReceived || 0;
        o.nacks = r.nackCount || 0;
        o.plis = r.pliCount || 0;
        o.lost = r.packetsLost || 0;
        o.packets = r.packetsReceived || 0;
        o.video_bytes = r.bytesReceived || 0;
      } else {
        o.concealed = r.concealedSamples || 0;
        o.samples = r.totalSamplesReceived || 0;
        o.audio_bytes = r.bytesReceived || 0;
      }
    });
  }
  return { t: performance.now() / 1000, by, link: (S && S.linkQuality) || null };
}"""


@dataclass
class Snapshot:
    """One page's receive counters at one moment."""

    t: float
    by: dict[str, dict[str, float]]
    link: dict[str, Any] | None

    def since(self, before: Snapshot) -> dict[str, Received]:
        """What each remote participant's media did between ``before`` and this one."""
        dt = max(self.t - before.t, 1e-3)
        out = {}
        for pid, now in self.by.items():
            then = before.by.get(pid, {})

            def d(key: str, now: dict[str, float] = now, then: dict[str, float] = then) -> float:
                return max(0.0, now.get(key, 0) - then.get(key, 0))

            samples = d("samples")
            out[pid] = Received(
                fps=d("frames") / dt,
                width=int(now.get("width", 0)),
                height=int(now.get("height", 0)),
                freezes=int(d("freezes")),
                received_fps=d("received") / dt,
                nacks=int(d("nacks")),
                plis=int(d("plis")),
                lost=int(d("lost")),
                packets=int(d("packets")),
                concealment=d("concealed") / samples if samples else 1.0,
                video_kbps=d("video_bytes") * 8 / dt / 1000,
                audio_kbps=d("audio_bytes") * 8 / dt / 1000,
            )
        return out

    def video_state(self, pid: str) -> str | None:
        """What the server last said it forwards of ``pid``'s camera to this page."""
        for p in (self.link or {}).get("participants", []):
            if p.get("participant_id") == pid:
                video = p.get("video")
                return None if video is None else str(video)
        return None


# The page's own camera encodings as its browser sends them (outbound-rtp per rid).
_SENDING_JS = """async () => {
  const pc = window.seoulbridge && window.seoulbridge.pc;
  const out = [];
  if (pc) {
    (await pc.getStats()).forEach((r) => {
      if (r.type !== "outbound-rtp" || r.kind !== "video") return;
      out.push({
        rid: r.rid || "-", fps: r.framesPerSecond || 0, height: r.frameHeight || 0,
        kbps: (r.targetBitrate || 0) / 1000, limit: r.qualityLimitationReason || "none",
        keyframes: r.keyFramesEncoded || 0, plis: r.pliCount || 0,
      });
    });
  }
  return out.sort((a, b) => a.height - b.height);
}"""


async def sending(page: Any, since: dict[str, int] | None = None) -> tuple[str, dict[str, int]]:
    """What a page's browser encodes of its camera, per simulcast encoding:
    ``q 240p 10 fps 150 kbit/s (cpu), 3 keyframes`` — the upper bound of what anyone
    receives; keyframes encoded since the counts in ``since``. Returns the text and the
    counts now."""
    rows = [r for r in await page.evaluate(_SENDING_JS) if r["height"]]
    counts = {r["rid"]: int(r["keyframes"]) for r in rows}
    since = since or {}
    text = ", ".join(
        f"{r['rid']} {r['height']}p {r['fps']:.0f} fps {r['kbps']:.0f} kbit/s ({r['limit']})"
        + (f", {counts[r['rid']] - since.get(r['rid'], 0)} keyframes" if since else "")
        for r in rows
    )
    return text, counts


@dataclass(frozen=True)
class Received:
    fps: float
    width: int
    height: int
    freezes: int
    concealment: float
    video_kbps: float
    audio_kbps: float
    #: Frames that arrived complete per second (``fps`` is those decoded), NACKs and
    #: keyframe requests the page sent.
    received_fps: float = 0.0
    nacks: int = 0
    plis: int = 0
    #: Video packets lost (net of retransmissions) and received.
    lost: int = 0
    packets: int = 0

    def describe(self) -> str:
        return (
            f"{self.fps:5.1f} fps {self.width}x{self.height} freezes {self.freezes} "
            f"video {self.video_kbps:6.0f} kbit/s audio concealed {self.concealment:6.2%} "
            f"(received {self.received_fps:.1f} fps, {self.lost} of {self.packets} packets "
            f"lost, {self.nacks} NACKs, {self.plis} PLIs)"
        )


def first_moving(
    series: list[Snapshot], pid: str, fps: float, size: tuple[int, int] | None = None
) -> float | None:
    """When ``pid``'s video first moved in a second at >= ``fps`` (and at ``size``), in
    seconds after the first snapshot: the snapshot that saw that second's first new
    frame. None when no such second is in ``series``."""
    times = [snap.t for snap in series]

    def frames(k: int) -> float:
        return series[k].by.get(pid, {}).get("frames", 0)

    for k in range(1, len(series)):
        if frames(k) <= frames(k - 1):
            continue  # no new frame: not a moment video moved
        j = bisect.bisect_left(times, times[k - 1] + 1)
        if j == len(series):
            return None
        seen = series[k].by.get(pid, {})
        at_size = size is None or (seen.get("width"), seen.get("height")) == size
        if at_size and (frames(j) - frames(k - 1)) / (times[j] - times[k - 1]) >= fps:
            return times[k] - times[0]
    return None


def seconds_by_kind(series: list[Snapshot], pid: str, fps: float = 8.0) -> dict[str, int]:
    """The issue's 300 kbit/s target, second by second: each interval between
    consecutive snapshots (about a second apart) in which ``pid``'s video moved at >=
    ``fps`` ("moving"), or did not while the page showed it paused for the connection at
    either end ("paused"), or neither: a slow or frozen picture shown as live ("stalled").
    A camera paused for part of a window and moving for the rest has an average below
    ``fps`` and no stalled second."""
    counts = {"moving": 0, "paused": 0, "stalled": 0}
    for before, after in itertools.pairwise(series):
        got = after.since(before).get(pid)
        if got is not None and got.fps >= fps:
            counts["moving"] += 1
        elif "paused" in (before.video_state(pid), after.video_state(pid)):
            counts["paused"] += 1
        else:
            counts["stalled"] += 1
    return counts


async def snapshot(page: Any) -> Snapshot:
    raw = await page.evaluate(_SNAPSHOT_JS)
    return Snapshot(float(raw["t"]), raw["by"], raw["link"])


async def window(page: Any, seconds: float) -> dict[str, Received]:
    """Receive figures per remote participant over the next ``seconds``."""
    before = await snapshot(page)
    await asyncio.sleep(seconds)
    return (await snapshot(page)).since(before)


#: The server's per-tick trace of every subscriber's estimate and allocation
#: (``media.adaptation``), and how often it writes one.
TRACE_ENV: Final = {"SEOULBRIDGE_LOG_LEVEL": "INFO,media.linktrace=DEBUG"}
TICK_S: Final = 0.5


@dataclass
class PoorLinkCall:
    ns: Netns
    node: NodeProcess
    pages: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)

    def others(self, role: str) -> dict[str, str]:
        """role -> participant id of everyone but ``role``."""
        return {r: pid for r, pid in self.ids.items() if r != role}

    def server_story(self, seconds: float = 20.0, lines: int = 30) -> str:
        """For a failure message: the server log's last ``lines`` lines of INFO and up,
        and, when the server runs with ``TRACE_ENV``, its estimate and allocation for the
        resident (one line per tick) over the last ``seconds``."""
        text = self.node.log_path.read_text(errors="replace") if self.node.log_path.exists() else ""
        info, traced = [], []
        for line in text.splitlines():
            (traced if "media.linktrace" in line else info).append(line)
        who = f"subscriber {self.ids.get('resident', '?')}:"
        mine = [line for line in traced if who in line][-int(seconds / TICK_S) :]
        story = "\n".join(info[-lines:])
        if mine:
            story += "\n-- the resident's link, per tick --\n" + "\n".join(mine)
        return story

    async def wait_media(self, timeout_s: float = 40.0) -> None:
        """Until every page decodes video and hears audio of both others."""
        deadline = time.monotonic() + timeout_s
        while True:
            ready = []
            for role, page in self.pages.items():
                a = await snapshot(page)
                await asyncio.sleep(0.5)
                b = await snapshot(page)
                got = b.since(a)
                ready.append(
                    all(
                        pid in got and got[pid].fps > 0 and got[pid].audio_kbps > 0
                        for pid in self.others(role).values()
                    )
                )
            if all(ready):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no media on every page in {timeout_s} s: {ready}")


def _links(node: NodeProcess) -> dict[str, str]:
    server = Server(node.base_url, node.data_dir, node.log_path, node.token_secret)
    reply = server.post(
        "/api/rooms",
        {
            "title": "국적 상담 · poor link",
            "topic": "nationality",
            "resident": {"name": "Tanaka Resident", "language": "ja"},
            "interpreter": {"name": "Sato Interpreter", "language": "ja"},
            "counselor_language": "ko",
        },
        bearer=server.staff_token(),
    )
    links: dict[str, str] = reply["links"]  # type: ignore[assignment]
    return {role: links[role] for role in ROLES}


@asynccontextmanager
async def poor_link_call(
    playwright: Any,
    ns: Netns,
    data_dir: Path,
    *,
    server_args: tuple[str, ...] = (),
    server_env: dict[str, str] | None = None,
) -> AsyncIterator[PoorLinkCall]:
    """The server on ``ns.host_address``, three pages joined, the resident in ``ns``."""
    node = NodeProcess(data_dir, host=ns.host_address, env=dict(server_env or {}))
    node.extra_args = ("--demo", "--public-url", node.base_url, *server_args)
    async with AsyncExitStack() as stack:
        stack.callback(node.kill)
        await asyncio.to_thread(node.start)
        args = [*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={node.base_url}"]
        here = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        stack.push_async_callback(here.close)
        wrapper = ns.wrapper(data_dir, CHROMIUM)
        there = await playwright.chromium.launch(executable_path=str(wrapper), args=args)
        stack.push_async_callback(there.close)
        links = await asyncio.to_thread(_links, node)
        pages: dict[str, Any] = {}
        for role in ("counselor", "interpreter"):
            pages[role] = await open_page(here, links[role])
            await join(pages[role])
            await until(pages[role], "s.screen === 'call'")
        pages["resident"] = await open_page(there, links["resident"], locale="ja-JP")
        await join(pages["resident"])
        await admit_all(pages["counselor"])
        await until(pages["resident"], "s.screen === 'call'")
        call = PoorLinkCall(ns, node, pages)
        for role, page in pages.items():
            call.ids[role] = str(await page.evaluate("() => window.seoulbridge.you.id"))
        yield call
