"""Prometheus metrics: one registry per application, read from live state at scrape time."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kernel.media_types import LinkQuality, VideoState
from signaling.live import ParticipantState
from signaling.placement import NodePlacement
from signaling.server import SignalingServer
from web.appkeys import METRICS_REGISTRY, SETTINGS
from web.http_errors import raise_error


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
        links = GaugeMetricFamily(
            "seoulbridge_subscriber_links",
            "Participants' connections by the quality the server measures (adaptation)",
            labels=["node", "quality"],
        )
        videos = GaugeMetricFamily(
            "seoulbridge_video_subscriptions",
            "Cameras forwarded to subscribers: in full, a reduced layer, or paused for the link",
            labels=["node", "state"],
        )
        estimate = GaugeMetricFamily(
            "seoulbridge_subscriber_estimate_min_bps",
            "The lowest estimate of what one participant's link can receive (bit/s)",
            labels=["node"],
        )
        stats = [s for r in rooms.values() for s in r.media.link_stats()]
        for quality in LinkQuality:
            links.add_metric(
                [self._node, quality.value], sum(1 for s in stats if s.quality is quality)
            )
        for video in VideoState:
            videos.add_metric(
                [self._node, video.value],
                sum(1 for s in stats for v in s.videos.values() if v is video),
            )
        known = [s.estimate_bps for s in stats if s.estimate_bps is not None]
        estimate.add_metric([self._node], min(known) if known else float("nan"))
        yield from (live, people, peers, pubs, streams, links, videos, estimate)


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


def metrics_allowed(request: web.Request) -> bool:
    """The metrics token as a Bearer token; or loopback, if explicitly configured.

    Loopback alone is not enough by default: through a reverse proxy on the same host
    every request arrives from loopback.
    """
    settings = request.app[SETTINGS]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    token = settings.metrics_token
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    return settings.metrics_open_to_loopback and _is_loopback(request.remote)


async def metrics(request: web.Request) -> web.Response:
    """``/metrics``: with ``Authorization: Bearer <metrics token>`` (see ``metrics_allowed``)."""
    if not metrics_allowed(request):
        raise_error(
            401,
            "metrics_token_required",
            "Send SEOULBRIDGE_METRICS_TOKEN as 'Authorization: Bearer <token>' (or set "
            "SEOULBRIDGE_METRICS_OPEN_TO_LOOPBACK=true on a host without a reverse proxy).",
        )
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
