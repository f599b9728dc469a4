"""Prometheus metrics: one registry per application, read from live state at scrape time."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from signaling.live import ParticipantState
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
        yield from (live, people, peers, pubs)


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
