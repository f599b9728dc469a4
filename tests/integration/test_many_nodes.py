"""Three real nodes on one real Redis: routing by the join step, failover, fencing.

* People who reach different nodes end up in one call on the room's node, and a
  dashboard served by a third node hears the knock (cross-node events).
* SIGKILL the node holding the media: everyone comes back through the join step
  on a surviving node within 10 s, still admitted, and captions resume there.
* A node stalled past its TTL while the room moved drops its peers when it wakes
  (fenced claim): its people come back on the room's new node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kernel.roles import Role
from signaling.tokens import TokenService
from tests.support.calls import media_everywhere
from tests.support.cluster import Cluster, get_json, redis_process, resume, running_cluster, stall
from tests.support.node_process import TOKEN_SECRET, NodeProcess
from tests.support.redis_process import REDIS_SERVER, RedisProcess
from tests.support.routed_client import RoutedParticipant

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        REDIS_SERVER is None, reason="needs redis-server (apt install redis-server)"
    ),
]

RECOVERY_LIMIT_S = 10.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with redis_process(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisProcess) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path / "nodes", redis_server.url, 3) as nodes:
        yield nodes


def _people(cluster: Cluster, entries: dict[str, int]) -> tuple[str, dict[str, RoutedParticipant]]:
    room_id, tokens = cluster.room(
        "counselor:Counselor Kim:ko", "interpreter:Sato:ja", "resident:Kim Yui:ja"
    )
    urls = [n.base_url for n in cluster.nodes]
    people = {
        role: RoutedParticipant(
            [urls[i], *[u for u in urls if u != urls[i]]], room_id, tokens[role]
        )
        for role, i in entries.items()
    }
    return room_id, people


async def _into_call(people: dict[str, RoutedParticipant], *, roles: tuple[str, ...]) -> None:
    """Staff join; the counselor admits the resident from the lobby."""
    for role in roles:
        await people[role].connect()
        await people[role].wait_for("welcome")
    for role in roles:
        if role != "resident":
            await people[role].send({"type": "join"})
            await people[role].wait_for("joined")
    if "resident" in roles:
        resident = people["resident"]
        await resident.send({"type": "join"})
        await resident.wait_for("lobby")
        assert resident.you is not None
        await people["counselor"].send({"type": "admit", "participant_id": resident.you["id"]})
        await resident.wait_for("joined")


async def _close(people: dict[str, RoutedParticipant]) -> None:
    for p in people.values():
        with contextlib.suppress(Exception):
            await p.close()


class EventStream:
    """A staff page's ``GET /api/events`` on one node, read in the background."""

    def __init__(self, base_url: str) -> None:
        token = TokenService(TOKEN_SECRET).issue_staff(
            username="kim", role=Role.COUNSELOR, name="Counselor Kim", ttl_s=600
        )
        self._url = base_url + "/api/events"
        self._headers = {"Authorization": f"Bearer {token}"}
        self.events: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventStream:
        self._task = asyncio.ensure_future(self._read())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self._url, headers=self._headers) as reply,
        ):
            assert reply.status == 200, reply.status
            kind = None
            async for raw in reply.content:
                line = raw.decode().rstrip("\n")
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind:
                    self.events.append(json.loads(line.removeprefix("data: ")))

    async def wait_for(self, type_: str, room_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["type"] == type_ and event.get("room_id") == room_id:
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {type_} for {room_id}: {self.events}")


@pytest.mark.timeout(150)
async def test_people_reaching_different_nodes_meet_on_the_rooms_node(cluster: Cluster) -> None:
    room_id, people = _people(cluster, {"resident": 0, "counselor": 1, "interpreter": 2})
    try:
        async with EventStream(cluster.nodes[2].base_url) as dashboard:
            await _into_call(people, roles=("counselor", "interpreter", "resident"))
            knock = await dashboard.wait_for("knock", room_id)
            assert knock["waiting"] == 1
            live = await dashboard.wait_for("room_state", room_id)
            assert live["state"] in ("lobby", "live")
        nodes = {p.node["id"] for p in people.values() if p.node}
        assert len(nodes) == 1, {r: p.node for r, p in people.items()}
        await media_everywhere(list(people.values()))
        (holder,) = nodes
        registry = {n["info"]["node_id"]: n for n in cluster.registry()}
        assert sorted(registry) == ["node-0", "node-1", "node-2"]
        assert registry[holder]["claimed"] == 1 and registry[holder]["info"]["streams"] == 12
        print(f"\nresident via node-0, counselor via node-1, interpreter via node-2: on {holder}")
    finally:
        await _close(people)


async def _wait_media_again(
    people: dict[str, RoutedParticipant], before: dict[str, dict[str, int]], timeout: float
) -> None:
    """Every participant gets new frames of every kind from every other."""
    ids = {role: p.you["id"] for role, p in people.items() if p.you}
    waits = [
        viewer.wait_frames(ids[other], kind, before[role].get(f"{ids[other]}:{kind}", 0) + 5,
                           timeout=timeout)
        for role, viewer in people.items()
        for other in people
        if other != role
        for kind in ("audio", "video")
    ]  # fmt: skip
    await asyncio.gather(*waits)


async def _wait_reconnected(people: dict[str, RoutedParticipant], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.reconnected_at for p in people.values()):
        if time.monotonic() > deadline:
            raise AssertionError({r: p.routes for r, p in people.items()})
        await asyncio.sleep(0.05)


def _frames(people: dict[str, RoutedParticipant]) -> dict[str, dict[str, int]]:
    return {
        role: {f"{pid}:{kind}": n for pid, kinds in p.frames.items() for kind, n in kinds.items()}
        for role, p in people.items()
    }


@pytest.mark.timeout(200)
async def test_killing_the_media_node_moves_the_call_within_10_s(cluster: Cluster) -> None:
    room_id, people = _people(cluster, {"resident": 0, "counselor": 1, "interpreter": 2})
    try:
        await _into_call(people, roles=("counselor", "interpreter", "resident"))
        await media_everywhere(list(people.values()))
        holder = people["counselor"].node
        assert holder is not None
        for p in people.values():
            p.auto_rejoin = True
        lobby_before = len(people["resident"].received("lobby"))
        victim = cluster.by_id(holder["id"])
        killed = time.monotonic()
        await asyncio.to_thread(victim.kill)
        try:
            await _wait_reconnected(people, timeout=RECOVERY_LIMIT_S + 20)
            await _wait_media_again(people, _frames(people), timeout=RECOVERY_LIMIT_S + 20)
        except AssertionError:
            pytest.fail(f"no media after the kill:\n{cluster.log_tails()}")
        took = time.monotonic() - killed
        new = {p.node["id"] for p in people.values() if p.node}
        assert len(new) == 1 and holder["id"] not in new, new
        assert all(p.node and p.node["epoch"] > holder["epoch"] for p in people.values())
        assert len(people["resident"].received("lobby")) == lobby_before, "sent to the lobby"
        back = sorted(p.reconnected_at[-1] - killed for p in people.values())
        print(
            f"\nSIGKILL of {holder['id']}: sockets back after "
            f"{', '.join(f'{b:.2f}' for b in back)} s (median {statistics.median(back):.2f}); "
            f"media again on every side after {took:.2f} s, on {new.pop()}"
        )
        assert took < RECOVERY_LIMIT_S, f"recovery took {took:.1f} s"
        status, body, _ = await asyncio.to_thread(
            get_json,
            f"{cluster.nodes[0 if victim is not cluster.nodes[0] else 1].base_url}"
            f"/api/join-info?room={room_id}&t={people['resident'].token}",
        )
        assert status == 200 and body["node"]["id"] != holder["id"]
    finally:
        await _close(people)


@pytest.mark.timeout(200)
async def test_a_stalled_node_drops_its_peers_once_the_room_moved(cluster: Cluster) -> None:
    """Fencing: the media node stops (SIGSTOP) past its TTL; the interpreter's join moves
    the room (a new epoch); when the node wakes its renewal fails, it tells its people
    ``room_moved`` and closes them, and they meet the interpreter on the new node."""
    _, people = _people(cluster, {"resident": 0, "counselor": 1, "interpreter": 2})
    try:
        await _into_call(people, roles=("counselor", "resident"))
        holder = people["counselor"].node
        assert holder is not None
        stalled = cluster.by_id(holder["id"])
        others = [n for n in cluster.nodes if n is not stalled]
        people["interpreter"].entry_urls = [n.base_url for n in others]
        for p in people.values():
            p.auto_rejoin = True
        stall(stalled)
        try:
            await asyncio.sleep(6.5)  # longer than the node TTL (5 s): its claim lapses
            await _into_call(people, roles=("interpreter",))
            moved = people["interpreter"].node
            assert moved is not None and moved["id"] != holder["id"]
            assert moved["epoch"] == holder["epoch"] + 1
        finally:
            resume(stalled)
        for role in ("counselor", "resident"):
            await people[role].wait_for("room_moved", timeout=15)
        await media_everywhere(list(people.values()), timeout=40)
        assert {p.node["id"] for p in people.values() if p.node} == {moved["id"]}
        assert len(people["resident"].received("lobby")) == 1, "admission must stand"
        assert "superseded" in stalled.log_path.read_text()
    finally:
        await _close(people)


async def _logged(node: NodeProcess, line: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while line not in node.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"not logged: {line}\n{node.log_tail()}"
        await asyncio.sleep(0.2)


@pytest.mark.timeout(200)
async def test_captions_start_again_on_the_surviving_node(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """The node that takes a room over captions it: the room's caption pipeline starts
    there for every listener, in their caption language, as people come back.

    (Recognised text after the move is not waited for here: on this shared 2-core
    machine Vosk in a node process stalls for tens of seconds on either node, which is
    the captions' own overload reporting, not routing.)"""
    two = Cluster(tmp_path / "nodes", redis_server.url, size=2)
    try:
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in two.nodes))
        room_id, people = _people(two, {"counselor": 0, "interpreter": 1})
        try:
            await _into_call(people, roles=("counselor", "interpreter"))
            listener = people["interpreter"].you
            assert listener is not None
            line = f"captions room={room_id} listener={listener['id']} language=ja"
            holder = people["counselor"].node
            assert holder is not None
            old, new = (
                two.by_id(holder["id"]),
                next(n for n in two.nodes if n.env["SEOULBRIDGE_NODE_ID"] != holder["id"]),
            )
            await _logged(old, line)
            assert line not in new.log_path.read_text()
            for p in people.values():
                p.auto_rejoin = True
            await asyncio.to_thread(old.kill)
            await _wait_reconnected(people, timeout=30)
            for p in people.values():
                await p.wait_for("joined", timeout=15)
            await _logged(new, line)
        finally:
            await _close(people)
    finally:
        await asyncio.to_thread(two.kill_all)


@pytest.mark.timeout(300)
async def test_a_running_recording_goes_on_as_a_new_segment_on_the_new_node(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """SIGKILL the node recording a consultation: on the survivor the recording goes on in
    a new segment, nobody is asked to consent again, and the first node's files stay."""
    from media.recorder import session_directory
    from tests.integration.rec_helpers import indicator, manifest, media_files

    two = Cluster(tmp_path / "nodes", redis_server.url, size=2, shared_data_dir=True)
    try:
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in two.nodes))
        room_id, people = _people(two, {"counselor": 0, "resident": 1})
        counselor, resident = people["counselor"], people["resident"]
        try:
            await _into_call(people, roles=("counselor", "resident"))
            assert resident.you is not None
            await counselor.wait_frames(resident.you["id"], "video", 5, timeout=30)
            await counselor.send({"type": "record_start"})
            await resident.wait_for("record_consent_request")
            await resident.send({"type": "record_consent"})
            for p in people.values():
                await indicator(p, "recording")
            await asyncio.sleep(3.0)
            directory = session_directory(two.nodes[0].data_dir, room_id)
            first_files = {f.name for f in media_files(directory)}
            assert len(first_files) == 4, first_files
            holder = counselor.node
            assert holder is not None
            for p in people.values():
                p.auto_rejoin = True
            seen = {p: len(p.received("record_indicator")) for p in people.values()}
            asked = len(resident.received("record_consent_request"))
            await asyncio.to_thread(two.by_id(holder["id"]).kill)
            await _wait_reconnected(people, timeout=30)
            for p in people.values():
                shown = await indicator(p, "recording", seen[p])
                assert shown["pending"] == []
            await counselor.wait_frames(resident.you["id"], "video", 200, timeout=60)
            await asyncio.sleep(3.0)
            assert len(resident.received("record_consent_request")) == asked, "asked again"
            stopped_at = len(counselor.received("record_indicator"))
            await counselor.send({"type": "record_stop"})
            await indicator(counselor, "stopped", stopped_at)
        finally:
            await _close(people)
        files = {f.name for f in media_files(directory)}
        assert first_files < files and len(files) == 8, sorted(files)
        (recording,) = manifest(directory)["recordings"]
        segments = recording["segments"]
        assert len(segments) == 2, segments
        assert all(t["frames"] > 0 for t in segments[-1]["tracks"]), segments[-1]
        print(f"\nrecording went on after the SIGKILL of {holder['id']}: segments {len(segments)}")
    finally:
        await asyncio.to_thread(two.kill_all)
