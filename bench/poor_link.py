"""A resident on a poor link: what they receive, with adaptation on and off.

    .venv/bin/python bench/poor_link.py [--modes on,off,nopad] [--rates 1000,500,300]
        [--settle 10] [--window 20]          # root: it makes a network namespace

Three Chromium pages with fake devices in a call; the resident's browser runs in a
network namespace whose veth to the server is limited with ``tc tbf`` both ways
(``tests/support/poor_link.py``). For each mode (``on``: this server; ``off``: the
same server with ``SEOULBRIDGE_ADAPTATION=false SEOULBRIDGE_SIMULCAST=false``, which
forwards every publisher's full stream as before; ``nopad``: this server with
``SEOULBRIDGE_PADDING_PROBES=false``, steps up without padding first) and each rate,
first unlimited:

* apply the limit; **adapt**: seconds until the server tells the resident's page
  that both cameras are reduced or paused for them (``link_quality``);
* after ``--settle`` s, a ``--window`` s measurement from the pages' ``getStats()``:
  the resident's received fps, resolution and freezes per remote camera, audio
  concealment (``concealedSamples / totalSamplesReceived``), what the server said it
  forwards; the counselor's view of the interpreter (an unconstrained pair);
  server CPU (its process, all threads) per forwarded stream;
* lift the limit; **resumed**: seconds until both remote cameras move again (the first
  new frame of a second at >= 8 fps); **recover**: until both are back at the unlimited
  window's resolution (the start of a second at >= 15 fps there), at most 40 s each;
  the page is sampled every 0.1 s.

The machine's load average is printed with each window: three real-time browsers and
the server share the CPUs, so a busy machine shows in every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.netns import Netns, unavailable_reason  # noqa: E402
from tests.support.node_process import NodeProcess  # noqa: E402
from tests.support.poor_link import (  # noqa: E402
    TRACE_ENV,
    PoorLinkCall,
    Snapshot,
    first_moving,
    poor_link_call,
    seconds_by_kind,
    sending,
    snapshot,
)

MODE_ENV = {
    "on": {},
    "off": {"SEOULBRIDGE_ADAPTATION": "false", "SEOULBRIDGE_SIMULCAST": "false"},
    "nopad": {"SEOULBRIDGE_PADDING_PROBES": "false"},
}
STREAMS = 12  # three people, each sending audio and video to two others


def _cpu_s(pid: int) -> float:
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


#: The bench's own /metrics token (the server is started with it).
METRICS_TOKEN = secrets.token_hex(16)


def _loop_lag(node: NodeProcess) -> dict[str, float]:
    """The server's event-loop lag histogram (cumulative counts by bucket, and count)."""
    request = urllib.request.Request(
        node.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    text = urllib.request.urlopen(request, timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("seoulbridge_event_loop_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[le] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("seoulbridge_event_loop_lag_seconds_count"):
            out["count"] = float(line.rsplit(" ", 1)[1])
    return out


def _lag_share(before: dict[str, float], after: dict[str, float], above: str) -> float:
    """Share of the loop-lag samples between two readings that were above ``above`` s."""
    count = after.get("count", 0) - before.get("count", 0)
    under = after.get(above, 0) - before.get(above, 0)
    return (count - under) / count if count else 0.0


def _secs(value: float | None, plus: float = 0.0) -> str:
    return "> 40 s" if value is None else f"{value + plus:.1f} s"


async def _after_lift(
    call: PoorLinkCall, staff: dict[str, str], full: dict[str, tuple[int, int]], limit_s: float = 40
) -> tuple[float | None, float | None]:
    """Seconds from now (the limit just lifted) until both remote cameras move again
    (the first new frame of a second at >= 8 fps) and until both are back at ``full``
    (a second at >= 15 fps at that resolution), sampling the page every 0.1 s: the
    moment is found to 0.1 s, not to the 1.25 s of back-to-back one-second windows."""
    page = call.pages["resident"]
    pids = list(staff.values())
    series: list[Snapshot] = [await snapshot(page)]
    t0 = series[0].t

    def both(fps: float, sizes: dict[str, tuple[int, int]] | None) -> float | None:
        moments = [first_moving(series, p, fps, None if sizes is None else sizes[p]) for p in pids]
        return None if None in moments else max(m for m in moments if m is not None)

    while series[-1].t - t0 < limit_s + 1:
        await asyncio.sleep(0.1)
        series.append(await snapshot(page))
        if len(series) % 10 == 0 and both(15, full) is not None:
            break
    return both(8, None), both(15, full)


async def _seconds_until(call: PoorLinkCall, check: Any, limit_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def _measure(call: PoorLinkCall, label: str, window_s: float) -> dict[str, Any]:
    resident, counselor = call.pages["resident"], call.pages["counselor"]
    assert call.node.proc is not None
    cpu0, t0 = _cpu_s(call.node.proc.pid), time.monotonic()
    lag0 = await asyncio.to_thread(_loop_lag, call.node)
    before_r, before_c = await snapshot(resident), await snapshot(counselor)
    keyframes = {role: (await sending(page))[1] for role, page in call.pages.items()}
    # The resident's page every second: which seconds moved, were shown paused, or neither.
    series = [before_r]
    started = time.monotonic()
    while time.monotonic() - started < window_s:
        await asyncio.sleep(min(1.0, window_s - (time.monotonic() - started)))
        series.append(await snapshot(resident))
    after_r, after_c = series[-1], await snapshot(counselor)
    cpu = (_cpu_s(call.node.proc.pid) - cpu0) / (time.monotonic() - t0)
    lag1 = await asyncio.to_thread(_loop_lag, call.node)
    got = after_r.since(before_r)
    staff = call.others("resident")
    interp = after_c.since(before_c).get(call.ids["interpreter"])
    print(
        f"  {label:>10}  load {os.getloadavg()[0]:.1f}  server CPU {cpu:.1%} "
        f"({cpu / STREAMS:.2%} per forwarded stream), event loop late by > 50 ms in "
        f"{_lag_share(lag0, lag1, '0.05'):.1%} of its 50 ms checks, > 100 ms in "
        f"{_lag_share(lag0, lag1, '0.1'):.1%}"
    )
    for role, pid in staff.items():
        r = got.get(pid)
        said = after_r.video_state(pid)
        print(f"    resident <- {role:<11} {r.describe() if r else 'nothing'}  server: {said}")
        kinds = seconds_by_kind(series, pid)
        print(
            f"      seconds at >= 8 fps {kinds['moving']}, shown paused {kinds['paused']}, "
            f"neither (stalled, shown as live) {kinds['stalled']}"
        )
    if interp:
        print(f"    counselor <- interpreter {interp.describe()}")
    for role, page in call.pages.items():
        print(f"    {role} sends {(await sending(page, keyframes[role]))[0]}")
    return {"resident": got, "interp": interp, "cpu": cpu}


async def run_mode(
    pw: Any, mode: str, rates: list[int], settle: float, window_s: float, trace: bool
) -> None:
    ns = Netns(9)
    ns.create()
    try:
        data = Path(tempfile.mkdtemp(prefix=f"poor-link-{mode}-"))
        env = dict(MODE_ENV[mode])
        env["SEOULBRIDGE_METRICS_TOKEN"] = METRICS_TOKEN
        if trace:
            env |= TRACE_ENV
            print(f"server log (with each subscriber's estimate per tick): {data / 'server.log'}")
        async with poor_link_call(pw, ns, data, server_env=env) as call:
            await call.wait_media()
            print(f"\nadaptation {mode}  ({', '.join(f'{r} {p}' for r, p in call.ids.items())})")
            await asyncio.sleep(settle)
            base = await _measure(call, "unlimited", window_s)
            staff = call.others("resident")
            full = {pid: (r.width, r.height) for pid, r in base["resident"].items()}
            for rate in rates:
                ns.limit(rate)

                async def adapted() -> bool:
                    snap = await snapshot(call.pages["resident"])
                    return all(snap.video_state(p) in ("reduced", "paused") for p in staff.values())

                adapt = await _seconds_until(call, adapted, settle)
                await asyncio.sleep(max(0.0, settle - (adapt or settle)))
                await _measure(call, f"{rate} kbit/s", window_s)
                print(f"    adapted in {'-' if adapt is None else f'{adapt:.1f} s'}")
                ns.unlimit()
                if trace:  # to find the moment in the server log
                    now = time.time()
                    stamp = time.strftime("%H:%M:%S", time.localtime(now))
                    print(f"    limit lifted at {stamp},{int(now % 1 * 1000):03d}")

                moving, back = await _after_lift(call, staff, full)
                print(
                    f"    resumed in {_secs(moving)} (both cameras moving again, at >= 8 fps "
                    f"over the next second: it ends at {_secs(moving, 1.0)})"
                )
                print(
                    f"    recovered in {_secs(back)} after the limit was lifted (both at the "
                    "unlimited resolution, >= 15 fps over the next second)"
                )
                await asyncio.sleep(5)
    finally:
        ns.remove()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="on,off")
    parser.add_argument("--rates", default="1000,500,300")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument(
        "--trace", action="store_true", help="log every subscriber's estimate and allocation"
    )
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        sys.exit(reason)
    from playwright.async_api import async_playwright

    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODE_ENV]
    if unknown:
        sys.exit(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(MODE_ENV)}")
    rates = [int(r) for r in args.rates.split(",") if r]
    async with async_playwright() as pw:
        for mode in modes:
            await run_mode(pw, mode, rates, args.settle, args.window, args.trace)


if __name__ == "__main__":
    asyncio.run(main())
