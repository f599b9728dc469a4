"""The scheduler's REST API in-process: validation messages, links, ics, OpenAPI, staff pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from _server import build_app
from aiohttp.test_utils import TestClient, TestServer
from sched_helpers import SECRET, add_staff

from scheduler.staff import StaffStore
from signaling.protocol import Role
from signaling.tokens import TokenService

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def client(redis_url: str, redis: aioredis.Redis) -> AsyncIterator[TestClient[Any, Any]]:
    store = StaffStore(redis)
    await add_staff(store, "park", Role.COUNSELOR, topics=["nationality"])
    await add_staff(store, "sato", Role.INTERPRETER, languages=["ko", "ja"])
    await add_staff(store, "admin", Role.ADMIN)
    async with TestClient(TestServer(build_app(redis_url, SECRET))) as c:
        yield c


def staff_headers(username: str, role: Role) -> dict[str, str]:
    token = TokenService(SECRET).issue_staff(username=username, role=role, name=username, ttl_s=60)
    return {"Authorization": f"Bearer {token}"}


async def first_free(client: TestClient[Any, Any], language: str = "ja") -> str:
    resp = await client.get(
        "/api/availability",
        params={"topic": "nationality", "language": language, "timezone": "Asia/Tokyo"},
    )
    assert resp.status == 200, await resp.text()
    slots = (await resp.json())["slots"]
    assert slots
    return str(slots[0]["local_start"])


def body(slot: str, **over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "Sato Yui", "contact": "090-1234-5678", "country": "jp",
        "timezone": "Asia/Tokyo", "language": "ja", "topic": "nationality", "slot_start": slot,
    }  # fmt: skip
    data.update(over)
    return data


async def test_booking_round_trip(client: TestClient[Any, Any]) -> None:
    slot = await first_free(client)
    resp = await client.post("/api/bookings", json=body(slot))
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert made["counselor"] == "park" and made["interpreter"] == "sato"
    assert made["join_url"].startswith("http://sb.test/join/r-")
    assert made["local_start"] == slot
    key = made["manage_key"]
    staff = await client.get(
        f"/api/bookings/{made['id']}", headers=staff_headers("park", Role.COUNSELOR)
    )
    assert staff.status == 200
    assert {link["role"] for link in (await staff.json())["staff_links"]} == {
        "counselor",
        "interpreter",
    }
    assert (await client.get(f"/api/bookings/{made['id']}")).status == 403
    ics = await client.get(made["ics_url"].removeprefix("http://sb.test"))
    assert ics.status == 200 and ics.content_type == "text/calendar"
    assert "BEGIN:VCALENDAR" in await ics.text()
    # The same slot again: the only interpreter is taken.
    again = await client.post("/api/bookings", json=body(slot, name="Other"))
    assert again.status == 409
    assert (await again.json())["error"]["code"] in ("slot_taken", "no_interpreter")
    cancel = await client.post(f"/api/bookings/{made['id']}/cancel", params={"key": key})
    assert cancel.status == 200 and (await cancel.json())["state"] == "cancelled"
    assert (await client.post("/api/bookings", json=body(slot, name="Other"))).status == 201


@pytest.mark.parametrize(
    ("over", "status", "fragment"),
    [
        ({"timezone": "Mars/Olympus"}, 422, "unknown time zone"),
        ({"contact": "not-a-contact"}, 422, "neither an e-mail address nor a phone number"),
        ({"contact": "a@b"}, 422, "not a valid e-mail address"),
        ({"country": "XX"}, 422, "unknown country"),
        ({"topic": "taxes"}, 422, "unknown topic"),
        ({"slot_start": "2020-01-06T10:00:00+09:00"}, 422, "in the past"),
        ({"slot_start": "2030-12-25T10:00:00+09:00"}, 422, "public holiday"),
        ({"slot_start": "2030-12-23T18:00:00+09:00"}, 422, "not a slot start"),
        ({"language": "fr"}, 422, "language"),
        ({"surprise": 1}, 422, "surprise"),
    ],
)
async def test_validation_errors_say_what_to_fix(
    client: TestClient[Any, Any], redis: aioredis.Redis, over: dict[str, object], status: int,
    fragment: str,
) -> None:  # fmt: skip
    before = await redis.dbsize()
    resp = await client.post("/api/bookings", json=body("2030-12-23T10:00:00+09:00", **over))
    assert resp.status == status
    error = (await resp.json())["error"]
    assert fragment in error["message"], error
    assert await redis.dbsize() == before  # nothing half-written


async def test_bad_json_and_bad_query(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        "/api/bookings", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.get("/api/availability", params={"topic": "nationality", "timezone": "X/Y"})
    assert resp.status == 422 and "unknown time zone" in (await resp.json())["error"]["message"]


async def test_queue_and_dashboard(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        "/api/queue", json={"name": "Kim", "topic": "nationality", "language": "ko"}
    )
    assert resp.status == 201
    ticket = await resp.json()
    assert ticket["position"] == 1
    poll = await client.get(f"/api/queue/{ticket['id']}", params={"key": ticket["ticket_key"]})
    assert (await poll.json())["state"] == "waiting"
    park = staff_headers("park", Role.COUNSELOR)
    assert (await client.post("/api/presence", json={"status": "busy"}, headers=park)).status == 422
    resp = await client.post("/api/presence", json={"status": "available"}, headers=park)
    assert resp.status == 200
    for _ in range(50):  # the background dispatcher matches within a second
        poll = await client.get(f"/api/queue/{ticket['id']}", params={"key": ticket["ticket_key"]})
        if (await poll.json())["state"] == "matched":
            break
        await asyncio.sleep(0.1)
    view = await poll.json()
    assert view["state"] == "matched" and view["join_url"]
    dash = await (await client.get("/api/dashboard", headers=park)).json()
    assert dash["presence"] == "busy"
    assert dash["walk_ins"][0]["name"] == "Kim" and dash["walk_ins"][0]["join_url"]
    done = await client.post(
        f"/api/queue/{ticket['id']}/state", json={"state": "done"}, headers=park
    )
    assert done.status == 200
    assert (await client.get("/api/dashboard")).status == 401


async def test_admin_and_openapi(client: TestClient[Any, Any]) -> None:
    admin = staff_headers("admin", Role.ADMIN)
    park = staff_headers("park", Role.COUNSELOR)
    topic = {"id": "pension", "names": {"ko": "연금", "en": "Pension"}, "slot_minutes": 45}
    assert (await client.put("/api/topics/pension", json=topic, headers=park)).status == 403
    assert (await client.put("/api/topics/pension", json=topic, headers=admin)).status == 200
    new = {
        "username": "choi", "display_name": "Choi", "role": "counselor", "topics": ["tax"],
        "password": "longenough1",
    }  # fmt: skip
    resp = await client.post("/api/staff", json=new, headers=admin)
    assert resp.status == 422 and "unknown topic" in (await resp.json())["error"]["message"]
    new["topics"] = ["pension"]
    new["weekly_hours"] = {"mon": [{"start": "10:00", "end": "12:00"}]}
    assert (await client.post("/api/staff", json=new, headers=admin)).status == 201
    staff = await (await client.get("/api/staff", headers=admin)).json()
    assert "choi" in {m["username"] for m in staff}
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    post = doc["paths"]["/api/bookings"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"name", "contact", "country", "timezone", "language", "topic", "slot_start"} <= set(
        schema["required"]
    )
    assert "/api/queue/{ticket_id}" in doc["paths"] and "/api/staff/login" in doc["paths"]


async def test_reschedule_keeps_people_and_validates(client: TestClient[Any, Any]) -> None:
    resp = await client.get(
        "/api/availability",
        params={"topic": "nationality", "language": "ko", "timezone": "Asia/Tokyo"},
    )
    slots = [s["local_start"] for s in (await resp.json())["slots"]]
    made = await (await client.post("/api/bookings", json=body(slots[0], language="ko"))).json()
    url = f"/api/bookings/{made['id']}/reschedule"
    key = {"key": made["manage_key"]}
    bad = await client.post(url, params=key, json={"slot_start": "2030-12-25T10:00:00+09:00"})
    assert bad.status == 422 and "holiday" in (await bad.json())["error"]["message"]
    moved = await client.post(url, params=key, json={"slot_start": slots[3]})
    assert moved.status == 200, await moved.text()
    view = await moved.json()
    assert view["local_start"] == slots[3] and view["counselor"] == "park"
    assert view["join_url"] != made["join_url"]
    # The old slot is free again; the new one is not.
    assert (await client.post("/api/bookings", json=body(slots[0], language="ko"))).status == 201
    assert (await client.post("/api/bookings", json=body(slots[3], language="ko"))).status == 409


@pytest.mark.parametrize(
    ("over", "fields"),
    [
        ({"contact": "not-a-contact"}, ["contact"]),
        ({"country": "XX", "name": ""}, ["name", "country"]),
        ({"timezone": "Mars/Olympus"}, ["timezone"]),
    ],
)
async def test_validation_errors_name_their_fields(
    client: TestClient[Any, Any], over: dict[str, object], fields: list[str]
) -> None:
    """Issue 15 item 5: pages choose their words by code and field, never from the
    English message, so a refusal names the fields at fault."""
    resp = await client.post("/api/bookings", json=body("2030-12-23T10:00:00+09:00", **over))
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_request" and error["fields"] == fields
