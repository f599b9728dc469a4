"""Stop and restart under a live three-party call: how long each takes, as people meet it.

    .venv/bin/python bench/restart.py [--rounds 5] [--burners 0]

Each round runs a real ``seoulbridge serve`` (embedded Redis, captions on) with three
aiortc participants in a call (the resident admitted from the lobby), then

* **stop**: SIGINT (odd rounds) or SIGTERM (even rounds) — seconds until the process
  exited, whether every participant was told (``server_restarting``) and whether the
  embedded Redis is gone;
* **restart**: SIGTERM or SIGKILL, the server started again on the same port and data
  directory, the participants reconnect with their links — seconds until the server
  answers, and until every participant receives audio and video from both others
  again, and whether the resident skipped the lobby.

``--burners N`` runs N busy-loop processes beside it (the issue's "two CPU-burning
processes"). The machine's load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.calls import enter_call, media_everywhere, tokens_from_cli  # noqa: E402
from tests.support.node_process import NodeProcess, embedded_redis, has_exited  # noqa: E402
from tests.support.rtc_client import RtcParticipant  # noqa: E402

ROLES = ("counselor", "interpreter", "resident")


def _burn(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


async def _call(node: NodeProcess) -> tuple[str, dict[str, str], list[RtcParticipant]]:
    out = await asyncio.to_thread(
        node.cli,
        "room", "create", "--title", "Bench",
        "--participant", "counselor:Counselor Kim:ko",
        "--participant", "interpreter:Sato:ja",
        "--participant", "resident:Kim Yui:ja",
    )  # fmt: skip
    room_id, tokens = tokens_from_cli(out)
    people = [RtcParticipant(node.base_url, room_id, tokens[r]) for r in ROLES]
    await enter_call(*people)
    await media_everywhere(people, timeout=60)
    return room_id, tokens, people


async def _close(people: list[RtcParticipant]) -> None:
    for p in people:
        with contextlib.suppress(Exception):
            await p.close()


#: The issue's bound for a stop with three in a call.
SLOW_STOP_S = 5.0


async def stop_round(sig: signal.Signals) -> tuple[float, bool, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp))
        await asyncio.to_thread(node.start)
        people: list[RtcParticipant] = []
        try:
            _, _, people = await _call(node)
            servers = embedded_redis(node.data_dir)
            took = await asyncio.to_thread(node.stop, sig)
            if took > SLOW_STOP_S:  # say where the stop waited (each step logs its time)
                steps = [
                    line
                    for line in node.log_tail(400).splitlines()
                    if " stopped " in line or "exiting without waiting" in line
                ]
                print(f"  slow {sig.name} stop ({took:.2f} s), its steps:", *steps, sep="\n    ")
            told = all(p.received("server_restarting") for p in people)
            gone = all([await asyncio.to_thread(has_exited, s) for s in servers])
            if not gone:
                lines = [ln for ln in node.log_tail(400).splitlines() if "redis" in ln.lower()]
                print("  embedded Redis left running; the log says:", *lines[-8:], sep="\n    ")
            return took, told, gone
        finally:
            await _close(people)
            await asyncio.to_thread(node.kill)


async def restart_round(sig: signal.Signals) -> tuple[float, float, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp))
        await asyncio.to_thread(node.start)
        people: list[RtcParticipant] = []
        try:
            room_id, tokens, people = await _call(node)
            await asyncio.to_thread(node.stop, sig)
            await _close(people)
            started = time.monotonic()
            await asyncio.to_thread(node.start)
            up = time.monotonic() - started
            people = [RtcParticipant(node.base_url, room_id, tokens[r]) for r in ROLES]
            for p in people:
                await p.connect()
                await p.wait_for("welcome")
                await p.send({"type": "join"})
            for p in people:
                await p.wait_for("joined", timeout=30)
            skipped_lobby = not people[2].received("lobby")
            await media_everywhere(people, timeout=60)
            return up, time.monotonic() - started, skipped_lobby
        finally:
            await _close(people)
            await asyncio.to_thread(node.kill)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burners", type=int, default=0)
    args = parser.parse_args()
    burners = [
        multiprocessing.Process(target=_burn, args=(3600.0,), daemon=True)
        for _ in range(args.burners)
    ]
    for b in burners:
        b.start()
    try:
        stops = []
        for i in range(args.rounds):
            sig = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
            took, told, gone = await stop_round(sig)
            stops.append(took)
            print(
                f"stop {sig.name:<7} with three in a call: {took:5.2f} s  told everyone: {told}"
                f"  embedded Redis gone: {gone}  (load {_load()})",
                flush=True,
            )
        backs = []
        for i in range(args.rounds):
            sig = signal.SIGTERM if i % 2 == 0 else signal.SIGKILL
            up, back, skipped = await restart_round(sig)
            backs.append(back)
            print(
                f"restart after {sig.name:<7}: server up {up:5.2f} s, media on all three "
                f"{back:5.2f} s, resident skipped the lobby: {skipped}  (load {_load()})",
                flush=True,
            )
        print(
            f"\nstop: median {statistics.median(stops):.2f} s, max {max(stops):.2f} s; "
            f"media back after a restart: median {statistics.median(backs):.2f} s, "
            f"max {max(backs):.2f} s  ({args.rounds} rounds each, {args.burners} burners)"
        )
    finally:
        for b in burners:
            b.terminate()


if __name__ == "__main__":
    asyncio.run(main())
