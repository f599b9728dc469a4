"""HTTP edges: every refusal in the JSON error shape with the security headers, /metrics
behind its token, a booking horizon, and the demo password on a second node."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import aiohttp
import pytest

from kernel.roles import Role
from scheduler.staff import StaffMember
from tests.support.node_process import NodeProcess
from tests.support.server import running_server
from web.appkeys import STAFF

pytestmark = pytest.mark.timeout(60)

_HEADERS = ("Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options")


def _assert_hardened(resp: aiohttp.ClientResponse, label: str) -> None:
    for name in _HEADERS:
        assert name in resp.headers, (label, name, dict(resp.headers))
    assert resp.headers.get("Cache-Control") == "no-store", (label, dict(resp.headers))
    assert "aiohttp" not in resp.headers.get("Server", "").lower(), (label, resp.headers["Server"])


async def _error_of(resp: aiohttp.ClientResponse) -> dict[str, str]:
    assert resp.content_type == "application/json", (resp.status, await resp.text())
    error = (await resp.json())["error"]
    # "fields" names the request fields at fault, where there are any
    assert {"code", "message"} <= set(error) <= {"code", "message", "fields"}, error
    assert error["message"], error
    return dict(error)


async def test_every_refusal_is_json_with_security_headers_and_no_store(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        url = server.base_url
        async with http.get(url + "/no/such/page") as r:
            assert r.status == 404
            assert (await _error_of(r))["code"] == "not_found"
            _assert_hardened(r, "404")
        async with http.post(url + "/healthz") as r:
            assert r.status == 405
            error = await _error_of(r)
            assert error["code"] == "method_not_allowed" and "GET" in error["message"]
            assert "GET" in r.headers["Allow"]
            _assert_hardened(r, "405")
        big = b'{"username": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        async with http.post(
            url + "/api/staff/login",
            data=io.BytesIO(big),
            headers={"Content-Type": "application/json"},
        ) as r:
            assert r.status == 413
            assert (await _error_of(r))["code"] == "body_too_large"
            _assert_hardened(r, "413")
        async with http.post(url + "/api/rooms", json={}) as r:
            assert r.status == 401
            await _error_of(r)
            _assert_hardened(r, "401")
        async with http.get(url + "/api/availability", params={"topic": "x", "days": "999"}) as r:
            assert r.status == 422
            await _error_of(r)
            _assert_hardened(r, "422")
        async with http.get(url + "/") as r:
            assert r.status == 200
            assert "aiohttp" not in r.headers.get("Server", "").lower()
            assert "Content-Security-Policy" in r.headers


async def test_metrics_need_the_token_even_from_loopback(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with (
        running_server(data_dir, redis_url, metrics_token="m" * 32) as server,
        aiohttp.ClientSession() as http,
    ):
        url = server.base_url + "/metrics"
        async with http.get(url) as r:
            assert r.status == 401
            assert (await _error_of(r))["code"] == "metrics_token_required"
        async with http.get(url, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": "Bearer " + "m" * 32}) as r:
            assert r.status == 200
            assert "seoulbridge_live_rooms" in await r.text()
    async with (
        running_server(data_dir, redis_url, metrics_open_to_loopback=True) as server,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(server.base_url + "/metrics") as r:
            assert r.status == 200


def _booking(slot_start: str) -> dict[str, str]:
    return {
        "name": "Kim Yui", "contact": "yui@example.jp", "country": "JP",
        "timezone": "Asia/Tokyo", "language": "ko", "topic": "nationality",
        "slot_start": slot_start,
    }  # fmt: skip


async def test_bookings_and_availability_stop_at_the_horizon(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        await server.app[STAFF].add(
            StaffMember(
                username="park", display_name="Park", role=Role.COUNSELOR, topics=["nationality"]
            ),
            "password123",
        )
        url = server.base_url
        # Working days at a slot start (2099-03-04 is a Wednesday, 9999-12-31 a Friday).
        for when in ("2099-03-04T10:00:00+09:00", "9999-12-31T10:00:00+09:00",
                     "9999-12-31T23:00:00-10:00"):  # fmt: skip
            async with http.post(url + "/api/bookings", json=_booking(when)) as r:
                assert r.status == 422, (when, r.status, await r.text())
                error = await _error_of(r)
                assert error["code"] == "invalid_slot" and "days ahead" in error["message"]
        for first in ("2099-03-02", "9999-12-31"):
            params = {"topic": "nationality", "from": first, "days": "62"}
            async with http.get(url + "/api/availability", params=params) as r:
                assert r.status == 200, (first, await r.text())
                assert (await r.json())["slots"] == []


def _printed_password(node: NodeProcess) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"Staff sign-in.*?: password (\S+)", node.log_tail(200), re.S)
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(node.log_tail())


async def test_demo_on_a_second_node_prints_a_password_that_works(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    nodes = [
        NodeProcess(tmp_path / name, extra_args=("--demo",), env={"REDIS_URL": redis_url})
        for name in ("one", "two")
    ]
    try:
        for node in nodes:
            node.data_dir.mkdir()
            await asyncio.to_thread(node.start)
        passwords = [_printed_password(node) for node in nodes]
        async with aiohttp.ClientSession() as http:
            for node, password in zip(nodes, passwords, strict=True):
                async with http.post(
                    node.base_url + "/api/staff/login",
                    json={"username": "demo-counselor", "password": password},
                ) as r:
                    assert r.status == 200, (node.base_url, passwords, await r.text())
    finally:
        for node in nodes:
            node.kill()
