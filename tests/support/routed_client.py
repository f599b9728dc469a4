"""A participant that connects the way the call page does: through the join step.

``RoutedParticipant`` asks ``GET /api/join-info`` on its entry node which node
holds the room, connects socket.io there, and — with ``auto_rejoin`` — comes
back by itself after it loses the node: the join step again (naming the lost
node as ``unreachable``, trying the other nodes if its entry is gone), a new
socket, ``join`` after ``welcome``, a new peer connection. As call.js does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.support.rtc_client import RtcParticipant

RETRY_FIRST_S = 0.5
RETRY_CAP_S = 4.0


class JoinStepError(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"join step: HTTP {status} {code}")
        self.status = status
        self.code = code


class RoutedParticipant(RtcParticipant):
    def __init__(self, entry_urls: list[str], room_id: str, token: str, **kw: Any) -> None:
        super().__init__(entry_urls[0], room_id, token, **kw)
        self.entry_urls = list(entry_urls)
        self.known_nodes: list[str] = []
        self.node: dict[str, Any] | None = None
        #: every join-step answer: (monotonic time, node)
        self.routes: list[tuple[float, dict[str, Any]]] = []
        self.auto_rejoin = False
        self._closing = False
        self._rejoin: asyncio.Task[None] | None = None
        self.reconnected_at: list[float] = []
        self.sio.on("disconnect", self._on_disconnect)

    # ----------------------------------------------------------- join step
    async def join_step(self, unreachable: str | None = None) -> dict[str, Any]:
        query = {"room": self.room_id, "t": self.token}
        if unreachable:
            query["unreachable"] = unreachable
        bases = self.entry_urls + [u for u in self.known_nodes if u not in self.entry_urls]
        last: Exception = JoinStepError(0, "network")
        timeout = aiohttp.ClientTimeout(total=8)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for base in bases:
                url = f"{base}/api/join-info?{urllib.parse.urlencode(query)}"
                try:
                    async with http.get(url) as reply:
                        body = json.loads(await reply.read() or b"{}")
                        if reply.status != 200:
                            raise JoinStepError(reply.status, body.get("error", {}).get("code", ""))
                except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                    last = exc
                    continue
                self.known_nodes = list(body.get("nodes") or self.known_nodes)
                self.node = body["node"]
                self.routes.append((time.monotonic(), body["node"]))
                return dict(body)
        raise last

    async def connect(self) -> None:
        info = await self.join_step()
        self.base_url = info["node"]["url"]
        await super().connect()

    # ----------------------------------------------------------- reconnection
    async def _on_disconnect(self, *reason: object) -> None:
        if self.auto_rejoin and not self._closing and self._rejoin is None:
            lost = (self.node or {}).get("id")
            self._rejoin = asyncio.ensure_future(self._come_back(lost))

    async def _come_back(self, lost: str | None) -> None:
        pause = RETRY_FIRST_S
        unreachable = lost
        try:
            while not self._closing:
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_CAP_S)
                try:
                    info = await self.join_step(unreachable)
                except JoinStepError as exc:
                    if exc.status in (0,) or exc.status >= 500:
                        continue
                    raise
                except (aiohttp.ClientError, TimeoutError, OSError):
                    continue
                self.base_url = info["node"]["url"]
                welcomed = len(self.received("welcome"))
                try:
                    await super().connect()
                    await self._until(lambda n=welcomed: len(self.received("welcome")) > n)
                except Exception:
                    unreachable = info["node"]["id"]
                    continue
                await self.send({"type": "join"})  # as the page does on every welcome
                self.reconnected_at.append(time.monotonic())
                return
        finally:
            self._rejoin = None

    async def _until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(done), timeout)

    async def send(self, message: dict[str, Any]) -> None:
        if self.sio.connected:  # an offer answered while the node went away goes nowhere
            await super().send(message)

    async def close(self) -> None:
        self._closing = True
        if self._rejoin is not None:
            self._rejoin.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._rejoin
        await super().close()
