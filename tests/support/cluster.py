"""Several real nodes (``NodeProcess``) on one real Redis, as a deployment runs them.

Every node gets the same ``REDIS_URL`` and token secret, its own data directory
and node id, and the URLs of all nodes (``SEOULBRIDGE_NODE_URLS``), so pages
served by one may connect to another. ``Cluster.kill_all()`` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.node_process import NodeProcess, free_port
from tests.support.redis_process import RedisProcess


@dataclass
class Cluster:
    root: Path
    redis_url: str
    size: int = 3
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    #: one data directory for all nodes (as ``serve --workers`` has): recordings in one place
    shared_data_dir: bool = False
    nodes: list[NodeProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = [free_port() for _ in range(self.size)]
        urls = ",".join(f"http://127.0.0.1:{p}" for p in ports)
        for i, port in enumerate(ports):
            data_dir = self.root / ("data" if self.shared_data_dir else f"node-{i}")
            data_dir.mkdir(parents=True, exist_ok=True)
            env = {
                "REDIS_URL": self.redis_url,
                "SEOULBRIDGE_NODE_ID": f"node-{i}",
                "SEOULBRIDGE_NODE_URLS": urls,
            } | self.extra_env
            node = NodeProcess(
                data_dir, port=port, env=env, extra_args=self.extra_args, log_name=f"server-{i}.log"
            )
            self.nodes.append(node)

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def by_id(self, node_id: str) -> NodeProcess:
        return next(n for n in self.nodes if n.env["SEOULBRIDGE_NODE_ID"] == node_id)

    def cli(self, *args: str) -> str:
        return self.nodes[0].cli(*args)

    def room(self, *participants: str, title: str = "Many nodes") -> tuple[str, dict[str, str]]:
        """``seoulbridge room create`` with ``role:name:lang`` participants: (room, tokens)."""
        from tests.support.calls import tokens_from_cli

        args = ["room", "create", "--title", title]
        for p in participants:
            args += ["--participant", p]
        return tokens_from_cli(self.cli(*args))

    def registry(self) -> list[dict[str, Any]]:
        """``seoulbridge nodes --json``."""
        return list(json.loads(self.cli("nodes", "--json")))

    def log_tails(self) -> str:
        return "\n".join(
            f"----- {n.env['SEOULBRIDGE_NODE_ID']} -----\n{n.log_tail(40)}" for n in self.nodes
        )


def get_json(url: str, timeout: float = 5.0) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.load(r), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def kill_node(node: NodeProcess) -> None:
    """SIGKILL the node's process (and its session): no goodbye, no clean-up."""
    node.kill()


def stall(node: NodeProcess) -> None:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGSTOP)


def resume(node: NodeProcess) -> None:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def redis_process(root: Path) -> Iterator[RedisProcess]:
    """A real redis-server of its own, killed at the end."""
    server = RedisProcess(root)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextlib.asynccontextmanager
async def running_cluster(root: Path, redis_url: str, size: int) -> AsyncIterator[Cluster]:
    """``size`` nodes started together on ``redis_url``; all killed at the end."""
    nodes = Cluster(root, redis_url, size=size)
    try:
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in nodes.nodes))
        yield nodes
    finally:
        await asyncio.to_thread(nodes.kill_all)
