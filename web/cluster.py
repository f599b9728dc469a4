"""This node among the others: the load it reports, and the probe of a node said to be gone.

``node_load`` is what the heartbeat carries (``signaling.placement.NodeLoad``):
rooms, participants, peer connections, forwarded streams and the process's CPU.
``NodeProbe`` answers the join step's question "is that node really gone?" when
a page says it could not reach the room's node: any HTTP answer from the node
within a second means it is alive (even a 503 while Redis is away); a refused or
silent connection means the room may move off it (its claim is fenced).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

import aiohttp
import psutil

from signaling.node_registry import NodeLoad
from signaling.server import SignalingServer

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S: Final = 1.0
#: A node found gone is not probed again for this long (many pages report it at once).
PROBE_MEMORY_S: Final = 2.0


def load_of(
    signaling: SignalingServer, process: psutil.Process | None = None
) -> Callable[[], NodeLoad]:
    """The heartbeat's figures for this node, read from its live rooms at each beat."""
    proc = process or psutil.Process()
    proc.cpu_percent(None)  # the first reading is meaningless; start the interval now

    def load() -> NodeLoad:
        rooms = signaling.live_rooms.values()
        streams = 0
        for room in rooms:
            subscribers = max(room.media.peer_count() - 1, 0)
            streams += len(room.media.publications()) * subscribers
        return NodeLoad(
            rooms=len(rooms),
            participants=sum(len(r.participants) for r in rooms),
            peers=sum(r.media.peer_count() for r in rooms),
            streams=streams,
            cpu_percent=round(proc.cpu_percent(None), 1),
        )

    return load


class NodeProbe:
    """Is the node at ``base_url`` alive? One bounded HTTP request, remembered briefly."""

    def __init__(
        self, *, timeout_s: float = PROBE_TIMEOUT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._timeout_s = timeout_s
        self._clock = clock
        self._gone: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def alive(self, base_url: str) -> bool:
        gone_at = self._gone.get(base_url)
        if gone_at is not None and self._clock() - gone_at < PROBE_MEMORY_S:
            return False
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s)
            )
        try:
            async with self._session.get(base_url + "/healthz", allow_redirects=False) as reply:
                await reply.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("node at %s did not answer a probe: %s", base_url, exc or type(exc))
            self._gone[base_url] = self._clock()
            return False
        except asyncio.CancelledError:
            raise
        self._gone.pop(base_url, None)
        return True
