"""``seoulbridge serve --workers 2``: two nodes on consecutive ports, one embedded Redis.

The supervisor starts the embedded Redis itself and gives both workers its URL,
one secret and each other's URLs; both register as nodes; a worker killed with
SIGKILL is started again (after a pause); SIGTERM to the supervisor stops
everything, the embedded Redis included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.node_process import (
    REPO,
    TOKEN_SECRET,
    _die_with_parent,
    embedded_redis,
    free_port,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Two workers import aiortc, PyAV and Vosk at once: slow on a loaded 2-core machine.
START_WAIT_S = 120.0


def _healthy(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
            return dict(json.load(r))
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], list[str], Path]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    base = free_port()
    while free_port() == base + 1:  # pragma: no cover - extremely unlikely
        base = free_port()
    ports = [base, base + 1]
    env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": TOKEN_SECRET, "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    log = (tmp_path / "supervisor.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--workers", "2", "--port", str(base),
         "--data-dir", str(data_dir)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent, start_new_session=True,
    )  # fmt: skip
    log.close()
    try:
        yield proc, [f"http://127.0.0.1:{p}" for p in ports], data_dir
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for leftover in embedded_redis(data_dir):
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()


async def test_workers_share_one_redis_restart_when_killed_and_stop_together(
    supervisor: tuple[subprocess.Popen[bytes], list[str], Path], tmp_path: Path
) -> None:
    proc, urls, data_dir = supervisor
    log = tmp_path / "supervisor.log"
    try:
        await asyncio.to_thread(
            _wait, lambda: all(_healthy(u) for u in urls), START_WAIT_S, "both workers"
        )
    except AssertionError:
        pytest.fail(log.read_text(errors="replace")[-4000:])
    nodes = {str(_healthy(u)["node"]) for u in urls}  # type: ignore[index]
    assert len(nodes) == 2
    assert len(embedded_redis(data_dir)) == 1, "one embedded Redis for both workers"

    env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": TOKEN_SECRET}
    env.pop("REDIS_URL", None)
    listing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "web.cli", "nodes", "--json", "--data-dir", str(data_dir)],
        cwd=REPO, env=env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    registered = {n["info"]["node_id"]: n["info"]["base_url"] for n in json.loads(listing.stdout)}
    assert set(registered) == nodes and sorted(registered.values()) == sorted(urls)

    # a worker killed outright comes back by itself (after the supervisor's pause)
    children = psutil.Process(proc.pid).children()
    victim = next(c for c in children if str(urls[1].rsplit(":", 1)[1]) in c.cmdline())
    victim.kill()
    killed = time.monotonic()
    await asyncio.to_thread(_wait, lambda: _healthy(urls[1]) is None, 10, "the worker to go")
    await asyncio.to_thread(
        _wait, lambda: _healthy(urls[1]) is not None, START_WAIT_S, "a new worker"
    )
    print(f"\nkilled worker back after {time.monotonic() - killed:.1f} s")
    assert "starting it again" in log.read_text()

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 30)
    took = time.monotonic() - started
    assert proc.returncode == 0, log.read_text(errors="replace")[-4000:]
    assert not any(_healthy(u) for u in urls)
    await asyncio.to_thread(_wait, lambda: not embedded_redis(data_dir), 10, "Redis to stop")
    print(f"supervisor and both workers stopped in {took:.1f} s")
