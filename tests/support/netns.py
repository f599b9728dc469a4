"""A network namespace joined to this one by a veth pair, for a browser on a poor link.

The namespace side gets ``10.200.N.2/29`` (or ``.3`` after ``change_address``), the host
side ``10.200.N.1/29``; nothing else is routed, so a program started in the namespace
(``exec_prefix``) reaches only the host-side address. ``limit()`` puts a token-bucket
filter (``tc qdisc ... tbf``) on *both* ends, so the namespace's downlink (host side
egress) and uplink (namespace side egress) are each limited to the rate; ``cut()``
takes the link down. Everything is created by ``create()`` and removed by
``remove()`` (also if creation failed half way). Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, no ip/tc, or the kernel refused)."""


def unavailable_reason() -> str | None:
    """Why a namespace test cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns, veth, tc tbf)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"network namespace tests need {tool!r} (iproute2)"
    return None


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=10)


@dataclass
class Netns:
    """One namespace and its veth pair (index ``n`` picks the 10.200.n.0/29 subnet)."""

    n: int
    name: str = ""
    host_if: str = ""
    ns_if: str = ""
    ns_address: str = ""
    rate_kbit: int | None = None
    _created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.name or f"sbnet{os.getpid() % 10000}-{self.n}"
        self.host_if = f"sbh{os.getpid() % 10000}n{self.n}"
        self.ns_if = f"sbn{os.getpid() % 10000}n{self.n}"
        self.ns_address = self.address(2)

    def address(self, host: int) -> str:
        return f"10.200.{self.n}.{host}"

    @property
    def host_address(self) -> str:
        return self.address(1)

    def in_ns(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def create(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise NetnsUnavailable(reason)
        try:
            _run("ip", "netns", "add", self.name)
            self._created.append("netns")
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self._created.append("veth")
            _run("ip", "link", "set", self.ns_if, "netns", self.name)
            _run("ip", "addr", "add", f"{self.host_address}/29", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            _run(*self.in_ns("ip", "link", "set", "lo", "up"))
            _run(*self.in_ns("ip", "addr", "add", f"{self.ns_address}/29", "dev", self.ns_if))
            _run(*self.in_ns("ip", "link", "set", self.ns_if, "up"))
        except subprocess.CalledProcessError as exc:
            self.remove()
            raise NetnsUnavailable(f"{' '.join(exc.cmd)}: {exc.stderr.strip()}") from None

    def remove(self) -> None:
        if "veth" in self._created:
            _run("ip", "link", "del", self.host_if, check=False)  # takes its peer with it
        if "netns" in self._created:
            _run("ip", "netns", "del", self.name, check=False)
        self._created.clear()

    # -- link conditions ---------------------------------------------------------------
    def limit(self, rate_kbit: int, *, latency_ms: int = 200) -> None:
        """Token bucket on both ends: ``rate_kbit`` each way, a queue of ``latency_ms``."""
        burst = max(4096, rate_kbit * 1000 // 8 // 50)  # >= 20 ms of tokens, >= 4 KB
        spec = [
            "tbf",
            "rate",
            f"{rate_kbit}kbit",
            "burst",
            str(burst),
            "latency",
            f"{latency_ms}ms",
        ]
        _run("tc", "qdisc", "replace", "dev", self.host_if, "root", *spec)
        _run(*self.in_ns("tc", "qdisc", "replace", "dev", self.ns_if, "root", *spec))
        self.rate_kbit = rate_kbit

    def unlimit(self) -> None:
        _run("tc", "qdisc", "del", "dev", self.host_if, "root", check=False)
        _run(*self.in_ns("tc", "qdisc", "del", "dev", self.ns_if, "root"), check=False)
        self.rate_kbit = None

    def cut(self) -> None:
        """The link goes away (as when Wi-Fi drops): nothing passes either way."""
        _run(*self.in_ns("ip", "link", "set", self.ns_if, "down"))

    def restore(self) -> None:
        _run(*self.in_ns("ip", "link", "set", self.ns_if, "up"))
        if self.rate_kbit is not None:
            self.limit(self.rate_kbit)

    def change_address(self, host: int = 3) -> str:
        """Move the namespace side to another address of the subnet (a new Wi-Fi lease)."""
        new = self.address(host)
        # Old one first: removing a primary address takes its secondaries with it.
        _run(*self.in_ns("ip", "addr", "del", f"{self.ns_address}/29", "dev", self.ns_if))
        _run(*self.in_ns("ip", "addr", "add", f"{new}/29", "dev", self.ns_if))
        self.ns_address = new
        return new

    def wrapper(self, directory: Path, program: str) -> Path:
        """A script that runs ``program`` inside the namespace (playwright's executable_path)."""
        script = directory / f"{Path(program).name}-in-{self.name}"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {program} "$@"\n')
        script.chmod(0o755)
        return script


@contextlib.contextmanager
def netns(n: int) -> Iterator[Netns]:
    ns = Netns(n)
    ns.create()
    try:
        yield ns
    finally:
        ns.remove()
