"""REST sign-in and room creation, and the CLI, against a real Redis."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from kernel.roles import Role
from scheduler.staff import StaffMember, hash_password, verify_password
from tests.support.server import running_server
from web.appkeys import STAFF, TOKENS
from web.settings import Settings

LOGIN_FAILURES_ALLOWED: int = Settings.model_fields["login_failures_per_account"].default

pytestmark = pytest.mark.timeout(60)


async def test_staff_sign_in_create_room_and_check_links(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        member = StaffMember(
            username="kim", display_name="상담사 김", role=Role.COUNSELOR, languages=["ko"]
        )
        await server.app[STAFF].add(member, "correct horse")
        url = server.base_url
        async with http.post(
            url + "/api/staff/login", json={"username": "kim", "password": "nope"}
        ) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "bad_credentials"
        async with http.post(
            url + "/api/staff/login", json={"username": "kim", "password": "correct horse"}
        ) as r:
            assert r.status == 200
            token = (await r.json())["token"]
        async with http.post(
            url + "/api/rooms", json={"resident": {"name": "Kim Yui", "language": "ja"}}
        ) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {token}"}
        bad = {"resident": {"name": "", "language": "fr"}}
        async with http.post(url + "/api/rooms", json=bad, headers=auth) as r:
            assert r.status == 422
            message = (await r.json())["error"]["message"]
            assert "resident.name" in message and "resident.language" in message
        body = {
            "title": "국적 상담",
            "resident": {"name": "Kim Yui", "language": "ja"},
            "interpreter": {"name": "Sato", "language": "ja"},
        }
        async with http.post(url + "/api/rooms", json=body, headers=auth) as r:
            assert r.status == 201
            created = await r.json()
        links = created["links"]
        room_id = created["room"]["id"]
        resident_token = links["resident"].split("?t=")[1]
        async with http.get(
            url + "/api/join-info", params={"room": room_id, "t": resident_token}
        ) as r:
            info = await r.json()
            assert (
                r.status == 200
                and info["you"]["role"] == "resident"
                and info["you"]["language"] == "ja"
            )
            # Never kept alive: after a network change the page's way back must not ride
            # a connection from before it (web/api_join.py).
            assert r.headers.get("Connection", "").lower() == "close", dict(r.headers)
        async with http.get(
            url + "/api/join-info", params={"room": "r-other", "t": resident_token}
        ) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "wrong_room"
        async with http.get(url + "/join/" + room_id, params={"t": resident_token}) as r:
            assert r.status == 200
            assert r.headers["Referrer-Policy"] == "no-referrer"
            assert "Content-Security-Policy" in r.headers


async def test_repeated_failed_sign_ins_are_throttled(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        member = StaffMember(username="lee", display_name="Lee", role=Role.COUNSELOR)
        await server.app[STAFF].add(member, "right password")
        login = server.base_url + "/api/staff/login"
        for _ in range(LOGIN_FAILURES_ALLOWED):
            async with http.post(login, json={"username": "lee", "password": "wrong"}) as r:
                assert r.status == 401
        async with http.post(login, json={"username": "lee", "password": "right password"}) as r:
            assert r.status == 429
            assert "Too many failed sign-ins" in (await r.json())["error"]["message"]


def _cli(
    data_dir: Path, redis_url: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "SEOULBRIDGE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_cli_staff_room_and_token(data_dir: Path, redis_url: str) -> None:
    added = _cli(
        data_dir,
        redis_url,
        "staff",
        "add",
        "park",
        "--name",
        "Park",
        "--role",
        "interpreter",
        "--languages",
        "ja,ko",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert added.returncode == 0, added.stderr
    again = _cli(
        data_dir,
        redis_url,
        "staff",
        "add",
        "park",
        "--name",
        "Park",
        "--role",
        "interpreter",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = _cli(
        data_dir,
        redis_url,
        "staff",
        "add",
        "x y",
        "--name",
        "X",
        "--role",
        "counselor",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert bad.returncode != 0 and "username" in bad.stderr
    listed = _cli(data_dir, redis_url, "staff", "list")
    assert "park" in listed.stdout and "ja,ko" in listed.stdout

    created = _cli(
        data_dir,
        redis_url,
        "room",
        "create",
        "--title",
        "병역 상담",
        "--participant",
        "resident:Kim Yui:ja",
    )
    assert created.returncode == 0, created.stderr
    room_id = created.stdout.split()[1]
    assert "/join/" + room_id + "?t=" in created.stdout
    token = _cli(
        data_dir,
        redis_url,
        "token",
        "--room",
        room_id,
        "--role",
        "counselor",
        "--name",
        "Kim",
        "--bare",
    )
    assert token.returncode == 0 and token.stdout.count(".") == 2
    missing = _cli(
        data_dir, redis_url, "token", "--room", "r-nope", "--role", "resident", "--name", "K"
    )
    assert missing.returncode == 1 and "no room" in missing.stderr


# ------------------------------------------------------------ the REST contract
def _registered_api_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/") and route.method != "HEAD":
            routes.add((route.method, path))
    return routes


def _check(doc: dict[str, Any], method: str, path: str, status: int, body: object) -> None:
    """``body`` is valid against the response schema the document gives for it."""
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path}: {status} is not documented"
    content = responses[str(status)].get("content", {})
    assert "application/json" in content, f"{method} {path} {status}: no JSON schema documented"
    schema = content["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    assert not errors, f"{method} {path} {status} does not match its documented schema: {errors}"


async def test_every_api_route_is_registered_and_documented_once(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        async with http.get(server.base_url + "/api/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
        registered = _registered_api_routes(server.app)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert not registered - documented, (
        f"registered, not documented: {sorted(registered - documented)}"
    )
    assert not documented - registered, (
        f"documented, not registered: {sorted(documented - registered)}"
    )


async def test_live_responses_match_their_documented_schemas(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        url = server.base_url
        await server.app[STAFF].add(
            StaffMember(
                username="kim", display_name="Kim", role=Role.COUNSELOR, topics=["nationality"]
            ),
            "correct horse",
        )
        async with http.get(url + "/api/openapi.json") as r:
            doc = await r.json()
        async with http.get(url + "/api/dashboard") as r:
            _check(doc, "GET", "/api/dashboard", r.status, await r.json())
        login = {"username": "kim", "password": "correct horse"}
        async with http.post(url + "/api/staff/login", json=login) as r:
            signed_in = await r.json()
            _check(doc, "POST", "/api/staff/login", r.status, signed_in)
        auth = {"Authorization": f"Bearer {signed_in['token']}"}
        room = {"resident": {"name": "Kim Yui", "language": "ja"}}
        async with http.post(url + "/api/rooms", json=room, headers=auth) as r:
            created = await r.json()
            _check(doc, "POST", "/api/rooms", r.status, created)
        token = created["links"]["resident"].split("?t=")[1]
        params = {"room": created["room"]["id"], "t": token}
        async with http.get(url + "/api/join-info", params=params) as r:
            _check(doc, "GET", "/api/join-info", r.status, await r.json())
        for path in ("/api/topics", "/api/center", "/api/dashboard", "/api/glossary"):
            async with http.get(url + path, headers=auth) as r:
                _check(doc, "GET", path, r.status, await r.json())
        walk_in = {"name": "Kim", "topic": "nationality", "language": "ko"}
        async with http.post(url + "/api/queue", json=walk_in) as r:
            _check(doc, "POST", "/api/queue", r.status, await r.json())


@pytest.mark.parametrize(
    ("path", "data", "status", "code"),
    [
        ("/api/staff/login", b"", 400, "empty_body"),
        ("/api/staff/login", b"{nope", 400, "invalid_json"),
        ("/api/rooms", b"{nope", 400, "invalid_json"),
        ("/api/rooms", b"", 400, "empty_body"),
        ("/api/queue", b"  ", 400, "empty_body"),
        ("/api/queue", b'{"name": "Kim"}', 422, "invalid_request"),
    ],
)
async def test_every_json_body_is_parsed_the_same_way(
    data_dir: Path, redis_url: str, redis: object, path: str, data: bytes, status: int, code: str
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        token = server.app[TOKENS].issue_staff(
            username="kim", role=Role.COUNSELOR, name="Kim", ttl_s=60
        )
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with http.post(server.base_url + path, data=data, headers=headers) as r:
            error = (await r.json())["error"]
            assert (r.status, error["code"]) == (status, code), error
            if code == "invalid_request":
                assert "topic" in error["message"] and "language" in error["message"]


@pytest.mark.solo
async def test_sign_in_keeps_the_event_loop_responsive(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    """Five concurrent sign-ins: the loop never stalls for anything like one password hash.

    With hashing on the loop every round stalls at least one hash long. Other load on a
    shared machine can deschedule the loop now and then, so the best of three rounds counts.
    It measures the loop's gaps, so it runs alone (solo): beside the other test process's
    browsers every one of three rounds had a gap over half a hash once (0.55).
    """
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        await server.app[STAFF].add(
            StaffMember(username="kim", display_name="Kim", role=Role.COUNSELOR), "correct horse"
        )
        login = server.base_url + "/api/staff/login"
        body = {"username": "kim", "password": "correct horse"}

        async def sign_in() -> int:
            async with http.post(login, json=body) as r:
                return r.status

        assert await sign_in() == 200  # warm: connections, first-call costs
        encoded = hash_password("correct horse")
        loop = asyncio.get_running_loop()
        rounds: list[tuple[float, float]] = []  # (max loop gap, one hash), seconds

        async def one_round() -> None:
            hash_s = min(
                _timed(lambda: verify_password("correct horse", encoded)) for _ in range(3)
            )
            gaps: list[float] = []
            stop = asyncio.Event()

            async def ticker() -> None:
                last = loop.time()
                while not stop.is_set():
                    await asyncio.sleep(0.001)
                    now = loop.time()
                    gaps.append(now - last)
                    last = now

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0.02)
            statuses = await asyncio.gather(*(sign_in() for _ in range(5)))
            stop.set()
            await ticking
            assert statuses == [200] * 5
            rounds.append((max(gaps), hash_s))

        gc.collect()
        gc.disable()  # a full collection of this big process is a stall of its own
        try:
            for _ in range(3):
                await one_round()
                if rounds[-1][0] / rounds[-1][1] < 0.5:
                    break
        finally:
            gc.enable()
    figures = ", ".join(f"{g * 1000:.1f}/{h * 1000:.1f} ms = {g / h:.2f}" for g, h in rounds)
    print(f"\nsign-in loop gap / one hash: {figures}")
    assert min(g / h for g, h in rounds) < 0.5, (
        f"the event loop stalled for a large part of a password hash in every round "
        f"(max gap / hash: {figures}): hashing runs on the loop"
    )


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start
