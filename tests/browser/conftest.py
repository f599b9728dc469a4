"""Browser-test fixtures: the real server as a subprocess, and headless Chromium.

The server runs as ``python -m web.cli serve --demo`` on a free loopback port with
a temporary data directory and a known token secret. It is stopped in the fixture
finalizer, and it also dies with the test process (``PR_SET_PDEATHSIG``) should
pytest itself be killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

TOKEN_SECRET = "browser-test-secret-" + "x" * 32
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process goes away (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    base_url: str
    data_dir: Path
    log_path: Path
    token_secret: str
    pid: int | None = None

    def post(
        self, path: str, body: dict[str, object], bearer: str | None = None
    ) -> dict[str, object]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {bearer}"} if bearer else {}),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.load(response))

    def staff_token(self) -> str:
        password = (self.data_dir / "demo-credentials.txt").read_text().strip()
        reply = self.post("/api/staff/login", {"username": "demo-counselor", "password": password})
        return str(reply["token"])

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def dump(self, lines: int = 150) -> str:
        """The server's state dump (SIGUSR1: tasks, thread stacks, executor backlog)
        and the log lines before it, for a test that timed out waiting on it."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGUSR1)
                time.sleep(1.0)
        return self.log_tail(lines)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    data_dir = tmp_path_factory.mktemp("browser-data")
    log_path = data_dir / "server.log"
    port = _free_port()
    env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": TOKEN_SECRET, "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "web.cli",
                "serve",
                "--demo",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    srv = Server(base_url, data_dir, log_path, TOKEN_SECRET, proc.pid)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{srv.log_tail()}")
            try:
                with urllib.request.urlopen(base_url + "/healthz", timeout=2) as r:
                    if r.status == 200 and (data_dir / "demo-credentials.txt").exists():
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not come up in 30 s:\n{srv.log_tail()}")
            time.sleep(0.2)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful: closes peers and the embedded Redis
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its session
        proc.wait(timeout=5)


@pytest.fixture
async def playwright() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


@pytest.fixture
async def browser(playwright: Any) -> AsyncIterator[object]:
    """Chromium that grants camera and microphone (fake devices) without asking."""
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest.fixture
async def browser_without_permission(playwright: Any) -> AsyncIterator[object]:
    """Chromium whose permission prompt is never accepted: getUserMedia is refused."""
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        yield chromium
    finally:
        await chromium.close()
