"""REST sign-in and room creation, and the CLI, against a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from scheduler.staff import StaffMember, StaffRole
from tests.support.server import running_server
from web.api_rooms import LOGIN_FAILURES_ALLOWED
from web.appkeys import STAFF

pytestmark = pytest.mark.timeout(60)


async def test_staff_sign_in_create_room_and_check_links(
    data_dir: Path, redis_url: str, redis: object
) -> None:
    async with running_server(data_dir, redis_url) as server, aiohttp.ClientSession() as http:
        member = StaffMember(
            username="kim", display_name="상담사 김", role=StaffRole.COUNSELOR, languages=["ko"]
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
        member = StaffMember(username="lee", display_name="Lee", role=StaffRole.COUNSELOR)
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
