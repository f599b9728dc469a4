"""Prometheus metrics: one registry per application, read from live state at scrape time."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from signaling.live import ParticipantState
from signaling.placement import NodePlacement
from signaling.server import SignalingServer
from web.appkeys import METRICS_REGISTRY, SETTINGS


class SignalingCollector(Collector):
    """Rooms, participants and peer connections on this node."""

    def __init__(self, signaling: SignalingServer, node_id: str) -> None:
        self._signaling = signaling
        self._node = node_id

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rooms = self._signaling.live_rooms
        live = GaugeMetricFamily(
            "seoulbridge_live_rooms", "Rooms open on this node", labels=["node"]
        )
        live.add_metric([self._node], len(rooms))
        people = GaugeMetricFamily(
            "seoulbridge_participants",
            "Participants on this node by state",
            labels=["node", "state"],
        )
        for state in ParticipantState:
            if state is ParticipantState.GONE:
                continue
            count = sum(
                1 for r in rooms.values() for p in r.participants.values() if p.state is state
            )
            people.add_metric([self._node, state.value], count)
        peers = GaugeMetricFamily(
            "seoulbridge_peer_connections", "Server-side peer connections", labels=["node"]
        )
        peers.add_metric([self._node], sum(r.media.peer_count() for r in rooms.values()))
        pubs = GaugeMetricFamily(
            "seoulbridge_publications", "Tracks published to the server", labels=["node", "kind"]
        )
        for kind in ("audio", "video"):
            count = sum(1 for r in rooms.values() for p in r.media.publications() if p.kind == kind)
            pubs.add_metric([self._node, kind], count)
        streams = GaugeMetricFamily(
            "seoulbridge_forwarded_streams",
            "Tracks forwarded to subscribers on this node (the placement load)",
            labels=["node"],
        )
        streams.add_metric(
            [self._node],
            sum(
                len(r.media.publications()) * max(r.media.peer_count() - 1, 0)
                for r in rooms.values()
            ),
        )
        yield from (live, people, peers, pubs, streams)


class PlacementCollector(Collector):
    """This node's placement figures, and the registry as of its last heartbeat."""

    def __init__(self, placement: NodePlacement) -> None:
        self._placement = placement

    def collect(self) -> Iterator[GaugeMetricFamily]:
        node = self._placement.node_id
        limit = GaugeMetricFamily(
            "seoulbridge_node_room_limit", "Rooms this node hosts at most", labels=["node"]
        )
        limit.add_metric([node], self._placement.room_limit)
        claimed = GaugeMetricFamily(
            "seoulbridge_node_rooms_claimed",
            "Rooms open on this node whose claims it renews",
            labels=["node"],
        )
        claimed.add_metric([node], len(self._placement.claims))
        accepting = GaugeMetricFamily(
            "seoulbridge_node_accepting", "1 while this node takes new rooms", labels=["node"]
        )
        accepting.add_metric([node], 1 if self._placement.accepting else 0)
        nodes = GaugeMetricFamily(
            "seoulbridge_cluster_nodes", "Live nodes in the registry (last heartbeat's view)"
        )
        snapshot = self._placement.snapshot()
        nodes.add_metric([], len(snapshot))
        rooms = GaugeMetricFamily(
            "seoulbridge_cluster_node_rooms", "Rooms claimed for each live node", labels=["node"]
        )
        streams = GaugeMetricFamily(
            "seoulbridge_cluster_node_streams",
            "Forwarded streams each live node reported",
            labels=["node"],
        )
        cpu = GaugeMetricFamily(
            "seoulbridge_cluster_node_cpu_percent",
            "Process CPU each live node reported (100 = one core)",
            labels=["node"],
        )
        for status in snapshot:
            rooms.add_metric([status.info.node_id], status.claimed)
            streams.add_metric([status.info.node_id], status.info.streams)
            cpu.add_metric([status.info.node_id], status.info.cpu_percent)
        yield from (limit, claimed, accepting, nodes, rooms, streams, cpu)


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    """``/metrics``: from loopback, or with ``Authorization: Bearer <metrics token>``."""
    token = request.app[SETTINGS].metrics_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not (_is_loopback(request.remote) or (token and given == token)):
        raise web.HTTPForbidden(
            text="metrics are served to loopback, or with the SEOULBRIDGE_METRICS_TOKEN "
            "as a Bearer token"
        )
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
