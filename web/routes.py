"""The one route table of the REST API: every ``/api`` endpoint, registered and documented.

``add_routes(app)`` registers each entry and ``GET /api/openapi.json``, which documents
exactly these entries (``web.openapi``). A route added any other way is missing from
the document, and ``tests/integration/test_rest_and_cli.py`` says so.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from web import (
    api_bookings,
    api_dashboard,
    api_events,
    api_join,
    api_observers,
    api_privacy,
    api_queue,
    api_rooms,
    api_scheduler,
    api_staff_admin,
    api_transcripts,
)
from web.endpoints import Endpoint, add_endpoints
from web.openapi import openapi_endpoint


def api_endpoints() -> list[Endpoint]:
    """Every REST endpoint but the OpenAPI document itself, grouped by module."""
    return [
        *api_join.ENDPOINTS,
        *api_rooms.ENDPOINTS,
        *api_observers.ENDPOINTS,
        *api_bookings.ENDPOINTS,
        *api_queue.ENDPOINTS,
        *api_dashboard.ENDPOINTS,
        *api_events.ENDPOINTS,
        *api_staff_admin.ENDPOINTS,
        *api_transcripts.endpoints(),
        *api_privacy.ENDPOINTS,
    ]


def _version() -> str:
    try:
        return version("seoulbridge")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def add_routes(app: web.Application) -> None:
    """The REST API, its OpenAPI document, and the scheduler's pages."""
    endpoints = api_endpoints()
    add_endpoints(app, [*endpoints, openapi_endpoint(endpoints, version=_version())])
    app.on_response_prepare.append(api_join.cors_headers)
    api_scheduler.add_pages(app)
