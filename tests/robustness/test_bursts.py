"""Bursts meet bounded pools: 503 + Retry-After in the JSON shape, never 500; the sign-in
limiter counts atomically, per account and per address."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import aiohttp
import pytest

from kernel.roles import Role
from scheduler.staff import StaffMember
from tests.support.server import RunningServer, running_server
from web.appkeys import STAFF

pytestmark = pytest.mark.timeout(90)


def _unbounded() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def _add(server: RunningServer, username: str, password: str = "right password") -> None:
    member = StaffMember(
        username=username, display_name=username.title(), role=Role.COUNSELOR,
        topics=["nationality"],
    )  # fmt: skip
    await server.app[STAFF].add(member, password)


async def _login(
    http: aiohttp.ClientSession, url: str, user: str, password: str, **headers: str
) -> int:
    async with http.post(
        url + "/api/staff/login", json={"username": user, "password": password}, headers=headers
    ) as r:
        if r.status >= 400:
            body = await r.json()  # always the JSON error shape
            assert body["error"]["code"] and body["error"]["message"], body
        if r.status in (429, 503):
            assert int(r.headers["Retry-After"]) > 0
        return r.status


async def test_concurrent_wrong_passwords_are_all_counted(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with (
        running_server(data_dir, redis_url, login_concurrency=100) as server,
        _unbounded() as http,
    ):
        await _add(server, "lee")
        statuses = await asyncio.gather(
            *(_login(http, server.base_url, "lee", f"wrong {i}") for i in range(60))
        )
        counts = collections.Counter(statuses)
        print("60 concurrent wrong passwords:", dict(counts))
        assert counts == {401: 10, 429: 50}, counts
        assert await _login(http, server.base_url, "lee", "right password") == 429


async def test_one_account_failing_does_not_lock_out_others_at_that_address(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, _unbounded() as http:
        await _add(server, "lee")
        await _add(server, "kim")
        for _ in range(10):
            assert await _login(http, server.base_url, "lee", "wrong") == 401
        assert await _login(http, server.base_url, "lee", "right password") == 429
        assert await _login(http, server.base_url, "kim", "right password") == 200


async def test_the_address_comes_from_the_trusted_proxy_header_only(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with (
        running_server(
            data_dir,
            redis_url,
            login_failures_per_address=3,
            trusted_proxy_header="X-Forwarded-For",
        ) as server,
        _unbounded() as http,
    ):
        url = server.base_url
        for user in ("a1", "a2", "a3"):
            assert (
                await _login(http, url, user, "x", **{"X-Forwarded-For": "1.2.3.4, 203.0.113.7"})
                == 401
            )
        # That address is at its limit, whatever account it tries; another address is not.
        assert await _login(http, url, "a4", "x", **{"X-Forwarded-For": "203.0.113.7"}) == 429
        assert await _login(http, url, "a4", "x", **{"X-Forwarded-For": "203.0.113.8"}) == 401
    async with (
        running_server(data_dir, redis_url, login_failures_per_address=3) as server,
        _unbounded() as http,
    ):
        # Without the setting the header is not believed: spoofing it changes nothing.
        url = server.base_url
        for i in range(3):
            assert (
                await _login(http, url, f"b{i}", "x", **{"X-Forwarded-For": f"10.9.9.{i}"}) == 401
            )
        assert await _login(http, url, "b9", "x", **{"X-Forwarded-For": "10.9.9.99"}) == 429


def _booking(i: int, slot: str) -> dict[str, str]:
    return {
        "name": f"Resident {i}", "contact": f"r{i}@example.de", "country": "DE",
        "timezone": "Europe/Berlin", "language": "ko", "topic": "nationality",
        "slot_start": slot,
    }  # fmt: skip


async def _burst_of_bookings(server: RunningServer, n: int) -> collections.Counter[int]:
    async with _unbounded() as http:
        async with http.get(
            server.base_url + "/api/availability",
            params={"topic": "nationality", "timezone": "Europe/Berlin", "days": "14"},
        ) as r:
            slots = [s["start"] for s in (await r.json())["slots"]][:20]
        assert slots

        async def book(i: int) -> int:
            async with http.post(
                server.base_url + "/api/bookings", json=_booking(i, slots[i % len(slots)])
            ) as r:
                assert r.content_type == "application/json", (r.status, await r.text())
                if r.status == 503:
                    assert int(r.headers["Retry-After"]) > 0
                    assert (await r.json())["error"]["code"] == "overloaded"
                return r.status

        return collections.Counter(await asyncio.gather(*(book(i) for i in range(n))))


async def test_400_concurrent_bookings_get_no_500(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server:
        await _add(server, "park")
        counts = await _burst_of_bookings(server, 400)
    print("400 concurrent bookings:", dict(counts))
    assert set(counts) <= {201, 409, 503}, counts
    assert counts[201] >= 1


async def test_a_pool_that_stays_busy_answers_503_with_retry_after(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(
        data_dir, redis_url, redis_max_connections=3, redis_pool_timeout_s=0.02
    ) as server:
        await _add(server, "park")
        counts = await _burst_of_bookings(server, 200)
    print("200 bookings through 3 Redis connections:", dict(counts))
    assert set(counts) <= {201, 409, 503}, counts
    assert counts[503] > 0


async def test_200_concurrent_sign_ins_get_no_500(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, _unbounded() as http:
        for i in range(4):
            await _add(server, f"staff{i}")
        statuses = await asyncio.gather(
            *(_login(http, server.base_url, f"staff{i % 4}", "right password") for i in range(200))
        )
        counts = collections.Counter(statuses)
        print("200 concurrent sign-ins:", dict(counts))
        assert set(counts) <= {200, 503}, counts
        assert counts[200] >= 1
        async with http.get(server.base_url + "/healthz") as r:
            assert r.status == 200
