"""``seoulbridge serve --workers N``: one node per core on one machine, supervised.

Python forwards media on one core per process, so a machine with N cores runs N
nodes. This supervisor starts ``seoulbridge serve`` N times on consecutive ports
(``--port``, ``--port``+1, …) sharing one Redis (``REDIS_URL``, or one embedded
Redis the supervisor starts in the data directory), one token secret and one
data directory; each worker knows every worker's URL (``SEOULBRIDGE_NODE_URLS``),
so a page served by one may connect to another. A worker that exits by itself is
started again after a pause that doubles from 1 s up to 30 s (reset once it has
run a minute), so a worker that cannot start never spins. SIGTERM or SIGINT
stops every worker (each tells its pages and closes its rooms) and then the
embedded Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Final

from web.redis_store import RedisHandle, open_redis
from web.settings import Settings

logger = logging.getLogger(__name__)

RESTART_FIRST_S: Final = 1.0
RESTART_CAP_S: Final = 30.0
#: A worker that ran this long before exiting is restarted after the first pause again.
HEALTHY_AFTER_S: Final = 60.0
#: How long a stop waits for the workers before killing them.
STOP_WAIT_S: Final = 15.0


def _die_with_parent() -> None:
    """In a worker: get SIGTERM when the supervisor goes away (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Worker:
    index: int
    port: int
    url: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pause_s: float = RESTART_FIRST_S
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("worker %d: pid %d on %s", self.index, self.proc.pid, self.url)


def worker_urls(settings: Settings, count: int) -> list[str]:
    """Each worker's public URL: ``SEOULBRIDGE_NODE_URLS`` when it lists one per worker,
    else ``http://HOST:PORT+i``."""
    if settings.node_urls:
        if len(settings.node_urls) != count:
            raise ValueError(
                f"SEOULBRIDGE_NODE_URLS lists {len(settings.node_urls)} URLs for {count} workers; "
                "give one per worker, in port order"
            )
        return list(settings.node_urls)
    if settings.public_url:
        raise ValueError(
            "with --workers, give each worker's public URL in SEOULBRIDGE_NODE_URLS "
            "(comma-separated, in port order) instead of one --public-url"
        )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return [f"http://{host}:{settings.port + i}" for i in range(count)]


class Supervisor:
    def __init__(self, settings: Settings, count: int, *, demo: bool = False) -> None:
        if count < 1:
            raise ValueError("--workers must be at least 1")
        self._settings = settings
        self._count = count
        self._demo = demo
        self._stop = asyncio.Event()
        self._redis: RedisHandle | None = None
        self.workers: list[Worker] = []

    async def run(self) -> int:
        settings = self._settings
        urls = worker_urls(settings, self._count)
        redis_url = settings.redis_url
        if not redis_url:
            self._redis = await open_redis(None, settings.data_dir)
            redis_url = self._redis.url
        secret = settings.resolved_secret()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        env = os.environ | {
            "REDIS_URL": redis_url,
            "SEOULBRIDGE_TOKEN_SECRET": secret,
            "SEOULBRIDGE_NODE_URLS": ",".join(urls),
        }
        env.pop("SEOULBRIDGE_NODE_ID", None)  # each worker is its own node
        for i, url in enumerate(urls):
            port = settings.port + i
            args = [
                sys.executable, "-m", "web.cli", "serve", "--host", settings.host,
                "--port", str(port), "--data-dir", str(settings.data_dir),
            ]  # fmt: skip
            if self._demo and i == 0:
                args.append("--demo")
            worker_env = env | {"SEOULBRIDGE_PUBLIC_URL": url}
            self.workers.append(Worker(i, port, url, args, worker_env))
        print(
            f"Seoulbridge: {self._count} workers on {', '.join(urls)} (Redis {redis_url})",
            flush=True,
        )
        try:
            for worker in self.workers:
                worker.start()
            await self._supervise()
        finally:
            await asyncio.to_thread(self._stop_workers)
            if self._redis is not None:
                await self._redis.aclose()
        return 0

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for worker in self.workers:
                assert worker.proc is not None
                if worker.restart_at is not None:
                    if now >= worker.restart_at:
                        worker.restarts += 1
                        worker.start()
                    continue
                code = worker.proc.poll()
                if code is None:
                    continue
                ran = now - worker.started_at
                if ran >= HEALTHY_AFTER_S:
                    worker.pause_s = RESTART_FIRST_S
                logger.warning(
                    "worker %d exited with %s after %.1f s; starting it again in %.0f s",
                    worker.index,
                    code,
                    ran,
                    worker.pause_s,
                )
                worker.restart_at = now + worker.pause_s
                worker.pause_s = min(worker.pause_s * 2, RESTART_CAP_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self._stop.wait()

    def _stop_workers(self) -> None:
        """SIGTERM to every worker, then wait (bounded), then SIGKILL what is left."""
        running = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker pid %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait(timeout=5)


def run_workers(settings: Settings, count: int, *, demo: bool = False) -> int:
    return asyncio.run(Supervisor(settings, count, demo=demo).run())
