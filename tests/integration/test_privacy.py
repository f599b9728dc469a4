"""Privacy through the real server and CLI: identity check, audit log, purge, subject requests.

Real Redis, the real application on loopback, real socket.io clients, real files;
old data is made old by setting file times and timestamps, as time would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from interpretation.transcript import TranscriptEntry
from media.recording_crypto import MAGIC
from scheduler.booking_store import BookingStore, booking_key
from scheduler.models import Booking, BookingState, ResidentDetails
from signaling.protocol import Role
from tests.integration.rec_helpers import enter
from tests.support.rtc_client import RtcParticipant
from tests.support.server import RunningServer, running_server
from web import cli_privacy
from web.appkeys import AUDIT, CAPTIONS, PRIVACY, RECORDING, ROOMS, TOKENS
from web.audit import STREAM, AuditAction, AuditLog, chain_key
from web.room_identity import identity_key

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

DAY = 86_400


def _line(entry_id: str, text: str = "네") -> TranscriptEntry:
    return TranscriptEntry(
        id=entry_id, speaker_id="p", speaker_name="K", language="ko", text=text, start=0, end=1
    )


def _admin(server: RunningServer, username: str = "admin-lee") -> dict[str, str]:
    token = server.app[TOKENS].issue_staff(
        username=username, role=Role.ADMIN, name="관리자 이", ttl_s=600
    )
    return {"Authorization": f"Bearer {token}"}


async def _booking(redis: aioredis.Redis, *, ended_days_ago: float, room_id: str | None) -> Booking:
    """A booking as the scheduler stores it (its own field layout), its slot long over."""
    end = datetime.now(UTC) - timedelta(days=ended_days_ago)
    booking = Booking(
        id=f"b-test{int(ended_days_ago)}",
        state=BookingState.COMPLETED,
        resident=ResidentDetails.model_construct(
            name="Kim Yui",
            contact="+819012345678",
            country="JP",
            timezone="Asia/Tokyo",
            language="ja",
        ),
        topic="nationality",
        needs_interpreter=True,
        start=end - timedelta(hours=1),
        end=end,
        counselor="counselor-kim",
        room_id=room_id,
        created_at=end - timedelta(days=3),
    )
    fields = BookingStore._fields(booking, "hash")
    mapping = dict(zip(fields[::2], fields[1::2], strict=True))
    mapping.update(counselor=booking.counselor, interpreter="")  # the reserve script's part
    await redis.hset(booking_key(booking.id), mapping=mapping)
    return booking


async def _audit(server: RunningServer) -> list[dict[str, Any]]:
    page = await server.app[AUDIT].page(limit=1000)
    return [e.model_dump(mode="json") for e in page.entries]


async def test_identity_check_reaches_everyone_booking_transcript_and_audit(
    data_dir: Path, redis_url: str
) -> None:
    async with running_server(data_dir, redis_url) as server:
        redis = aioredis.Redis.from_url(redis_url)
        record = await server.app[ROOMS].create(title="국적 상담 · Kim Yui", booking_id="b-test0")
        await _booking(redis, ended_days_ago=0, room_id=record.id)
        tokens = [
            server.app[TOKENS].issue_join(
                room_id=record.id, role=role, name=name, language=lang, ttl_s=600
            )
            for role, name, lang in (
                (Role.COUNSELOR, "상담사 김민지", "ko"),
                (Role.INTERPRETER, "Sato", "ja"),
                (Role.RESIDENT, "Kim Yui", "ja"),
            )
        ]
        counselor, interpreter, resident = (
            RtcParticipant(server.base_url, record.id, t, publish=False) for t in tokens
        )
        try:
            ids = await enter(counselor, interpreter, resident)
            # Only a counselor may, only about a resident, never with a whole number.
            await interpreter.send(
                {
                    "type": "identity_verify",
                    "participant_id": ids[resident],
                    "method": "passport_camera",
                }
            )
            assert (await interpreter.wait_for("error"))["code"] == "not_allowed"
            await counselor.send(
                {"type": "identity_verify", "participant_id": ids[interpreter], "method": "other"}
            )
            assert (await counselor.wait_for("error"))["code"] == "unknown_participant"
            await counselor.send(
                {
                    "type": "identity_verify",
                    "participant_id": ids[resident],
                    "method": "passport_camera",
                    "check": "M1234567",
                }
            )
            bad = await counselor.wait_for("error", code="bad_message")
            assert "check" in bad["message"]

            await counselor.send(
                {
                    "type": "identity_verify",
                    "participant_id": ids[resident],
                    "method": "passport_camera",
                    "check": "4567",
                }
            )
            seen = await resident.wait_for("identity_verified")
            assert seen["method"] == "passport_camera" and seen["verified_by"] == "상담사 김민지"
            assert seen["check"] is None  # the noted characters are for the counselor
            assert (await counselor.wait_for("identity_verified"))["check"] == "4567"
            assert (await interpreter.wait_for("identity_verified"))["check"] is None

            # A reload shows it again.
            await resident.close()
            again = RtcParticipant(server.base_url, record.id, tokens[2], publish=False)
            try:
                await again.connect()
                await again.send({"type": "join"})
                shown = await again.wait_for("identity_verified")
                assert shown["participant_id"] == ids[resident]
            finally:
                await again.close()
        finally:
            for p in (counselor, interpreter, resident):
                await p.close()

        found = await BookingStore(redis).get("b-test0")
        assert found is not None
        (check,) = found[0].identity_checks
        assert (check.method, check.check, check.verified_by_name) == (
            "passport_camera",
            "4567",
            "상담사 김민지",
        )
        entries = await asyncio.to_thread(server.app[CAPTIONS].transcripts.entries, record.id)
        (line,) = [e for e in entries if e.speaker_id == "system"]
        assert "여권" in line.text and "상담사 김민지" in line.text
        assert line.translations["ja"].startswith("本人確認済み")
        assert "4567" not in line.model_dump_json()
        (entry,) = [e for e in await _audit(server) if e["action"] == "identity.verified"]
        assert entry["detail"]["method"] == "passport_camera"
        assert entry["actor"] == ids[counselor] and entry["target"] == record.id
        assert "4567" not in json.dumps(entry)
        await redis.aclose()


async def test_downloads_staff_changes_and_consent_are_audited_and_the_chain_holds(
    data_dir: Path, redis_url: str
) -> None:
    async with running_server(data_dir, redis_url) as server:
        auth = _admin(server)
        server.app[CAPTIONS].transcripts.append(
            "r-audited",
            TranscriptEntry(
                id="c1",
                speaker_id="p",
                speaker_name="Kim",
                language="ko",
                text="네",
                start=0,
                end=1,
            ),
        )
        async with aiohttp.ClientSession(server.base_url) as http:
            async with http.get(
                "/api/sessions/r-audited/transcript.vtt?lang=ko", headers=auth
            ) as r:
                assert r.status == 200
            body = {
                "username": "counselor-park",
                "display_name": "상담사 박",
                "role": "counselor",
                "languages": ["ko"],
                "password": "a-long-password-1",
            }
            async with http.post("/api/staff", json=body, headers=auth) as r:
                assert r.status == 201, await r.text()
            async with http.delete("/api/staff/counselor-park", headers=auth) as r:
                assert r.status == 204
            async with http.get("/api/audit?limit=10", headers=auth) as r:
                page = await r.json()
            async with http.get("/api/audit/verify", headers=auth) as r:
                assert (await r.json())["ok"] is True
            counselor_auth = {
                "Authorization": "Bearer "
                + server.app[TOKENS].issue_staff(
                    username="c", role=Role.COUNSELOR, name="C", ttl_s=60
                )
            }
            async with http.get("/api/audit", headers=counselor_auth) as r:
                assert r.status == 403  # admins only

        actions = [(e["action"], e["target"], e["actor"]) for e in page["entries"]]
        assert actions[:3] == [
            ("staff.removed", "counselor-park", "admin-lee"),
            ("staff.created", "counselor-park", "admin-lee"),
            ("transcript.download", "r-audited", "admin-lee"),
        ]
        download = page["entries"][2]
        assert download["detail"]["lang"] == "ko" and download["source"] == "127.0.0.1"
        assert "password" not in json.dumps(page)

        # Consent answers, through the real recording extension.
        room_id, (t_cou, t_res) = await server.room_with(
            (Role.COUNSELOR, "Counselor Kim", "ko"), (Role.RESIDENT, "Kim Yui", "ja")
        )
        counselor = RtcParticipant(server.base_url, room_id, t_cou)
        resident = RtcParticipant(server.base_url, room_id, t_res)
        try:
            await enter(counselor, resident)
            await counselor.send({"type": "record_start"})
            await resident.wait_for("record_consent_request")
            await resident.send({"type": "record_decline"})
            await counselor.wait_for("record_indicator", state="stopped")
        finally:
            await counselor.close()
            await resident.close()
        answers = [e["action"] for e in await _audit(server) if e["target"] == room_id]
        assert answers == ["consent.declined", "consent.agreed"]

        # Tampering shows: an entry removed from the middle breaks the chain.
        log: AuditLog = server.app[AUDIT]
        redis = aioredis.Redis.from_url(redis_url)
        middle = (await log.page(limit=1000)).entries[2].id
        await redis.xdel(STREAM, middle)
        check = await log.verify()
        assert not check.ok and "removed" in (check.problem or "")
        forged = AuditLog(redis, chain_key("not the secret"))
        await forged.note(AuditAction.STAFF_CREATED, "intruder")
        assert (await AuditLog(redis, chain_key("t" * 40)).verify()).ok is False
        await redis.aclose()


def _old(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def _cli(data_dir: Path, redis_url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_privacy.register(sub)
    args = parser.parse_args([*argv, "--data-dir", str(data_dir), "--redis-url", redis_url])
    os.environ["SEOULBRIDGE_TOKEN_SECRET"] = "t" * 40
    try:
        result: int = args.func(args)
    finally:
        del os.environ["SEOULBRIDGE_TOKEN_SECRET"]
    return result


async def test_purge_dry_run_counts_and_the_real_run_deletes_only_what_is_due(
    data_dir: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_server(data_dir, redis_url) as server:
        redis = aioredis.Redis.from_url(redis_url)
        storage = server.app[RECORDING].storage
        recordings = data_dir / "recordings"
        for room, age in (("r-old", 120), ("r-new", 1)):
            directory = recordings / room
            with storage.create_track(directory / "rec1-seg0001-p-a-audio.webm") as f:
                f.write(b"x" * 1000)
            storage.write_manifest(directory, json.dumps({"format": 2, "room_id": room}))
            for path in directory.iterdir():
                _old(path, age)
        transcripts = server.app[CAPTIONS].transcripts
        for room, age in (("r-old", 120), ("r-new", 1)):
            transcripts.append(
                room,
                TranscriptEntry(
                    id="1",
                    speaker_id="p",
                    speaker_name="K",
                    language="ko",
                    text="네",
                    start=0,
                    end=1,
                ),
            )
            _old(data_dir / "transcripts" / f"{room}.jsonl", age)
        for room, age in (("r-old", 30), ("r-new", 0)):
            line = {
                "participant_id": "p",
                "name": "Kim",
                "text": "hi",
                "ts": time.time() - age * DAY,
            }
            await redis.rpush(f"sb:room:{room}:chat", json.dumps(line))
        old_room = await server.app[ROOMS].create(
            title="국적 상담 · Kim Yui", booking_id="b-test40"
        )
        await _booking(redis, ended_days_ago=40, room_id=old_room.id)
        await _booking(redis, ended_days_ago=2, room_id=None)
        before = set((recordings).iterdir())

        assert await asyncio.to_thread(_cli, data_dir, redis_url, "purge", "--dry-run") == 0
        out = capsys.readouterr().out
        assert "dry run" in out and "'rooms': 1" in out and "'bookings': 1" in out
        assert set(recordings.iterdir()) == before  # nothing went
        assert (data_dir / "transcripts" / "r-old.jsonl").exists()
        assert await redis.exists("sb:room:r-old:chat")

        assert await asyncio.to_thread(_cli, data_dir, redis_url, "purge") == 0
        assert [p.name for p in recordings.iterdir()] == ["r-new"]
        assert sorted(p.name for p in (data_dir / "transcripts").iterdir()) == ["r-new.jsonl"]
        assert not await redis.exists("sb:room:r-old:chat")
        assert await redis.exists("sb:room:r-new:chat")
        erased = await BookingStore(redis).get("b-test40")
        kept = await BookingStore(redis).get("b-test2")
        assert erased is not None and kept is not None
        assert erased[0].resident.name == "" and erased[0].resident.contact == ""
        assert erased[0].resident.country == "JP" and erased[0].contact_erased_at is not None
        assert kept[0].resident.name == "Kim Yui"
        room = await server.app[ROOMS].get(old_room.id)
        assert room is not None and "Kim Yui" not in room.title
        raw = await redis.hgetall(booking_key("b-test40"))
        assert b"Kim Yui" not in b"".join(raw.values()) and b"+8190" not in b"".join(raw.values())

        (purge,) = [
            e
            for e in await _audit(server)
            if e["action"] == "retention.purge" and e["actor"].startswith("cli:")
        ]
        assert purge["detail"]["recording_rooms"] == 1 and purge["detail"]["transcripts"] == 1
        assert purge["detail"]["chats"] == 1 and purge["detail"]["bookings_erased"] == 1
        assert purge["actor"].startswith("cli:")
        await redis.aclose()


async def test_the_server_purges_on_schedule(
    data_dir: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    # (the ``redis`` fixture empties Redis: no other test server's purge lock is left)
    directory = data_dir / "recordings" / "r-stale"
    directory.mkdir(parents=True)
    (directory / "rec1-seg0001-p-a-audio.webm").write_bytes(MAGIC + b"x")
    _old(directory / "rec1-seg0001-p-a-audio.webm", 400)
    async with running_server(data_dir, redis_url, purge_interval_s=0.5) as server:
        retention = server.app[PRIVACY].retention
        # A purge is done when it has counted its run, after its audit entry: the directory
        # goes first, so seeing it gone says nothing about the entry (a loaded CI run read
        # the audit log between the two).
        for _ in range(200):
            if retention.runs:
                break
            await asyncio.sleep(0.1)
        assert retention.runs, "no purge ran within 20 s of a 0.5 s interval"
        assert not directory.exists()
        assert any(e["action"] == "retention.purge" for e in await _audit(server))


async def test_a_subject_export_holds_everything_and_an_early_delete_leaves_nothing(
    data_dir: Path, redis_url: str
) -> None:
    async with running_server(data_dir, redis_url) as server:
        redis = aioredis.Redis.from_url(redis_url)
        record = await server.app[ROOMS].create(title="병역 상담 · Kim Yui", booking_id="b-test5")
        await _booking(redis, ended_days_ago=5, room_id=record.id)
        storage = server.app[RECORDING].storage
        directory = data_dir / "recordings" / record.id
        with storage.create_track(directory / "rec1-seg0001-p-a-audio.webm") as f:
            f.write(b"media")
        manifest = {"format": 2, "room_id": record.id, "recordings": []}
        storage.write_manifest(directory, json.dumps(manifest))
        server.app[CAPTIONS].transcripts.append(
            record.id,
            _line("1", "병역"),
        )
        await redis.rpush(f"sb:room:{record.id}:chat", json.dumps({"text": "안녕하세요", "ts": 1}))
        await redis.hset(identity_key(record.id), "p-x", json.dumps({
            "type": "identity_verified", "participant_id": "p-x", "method": "other",
            "verified_by": "K", "verified_by_id": "p-k", "at": 1.0,
        }))  # fmt: skip
        auth = _admin(server)
        async with aiohttp.ClientSession(server.base_url) as http:
            async with http.get(f"/api/privacy/consultations/{record.id}", headers=auth) as r:
                assert r.status == 200, await r.text()
                held = await r.json()
            async with http.delete(f"/api/privacy/consultations/{record.id}", headers=auth) as r:
                assert r.status == 200, await r.text()
                deleted = await r.json()
            async with http.get(f"/api/privacy/consultations/{record.id}", headers=auth) as r:
                after = await r.json()
        assert held["booking"]["resident"]["name"] == "Kim Yui"
        assert [e["text"] for e in held["transcript"]] == ["병역"]
        assert held["recording_manifest"]["room_id"] == record.id
        assert held["recording_files"][0]["encrypted"] is True
        assert held["chat"][0]["text"] == "안녕하세요"
        assert held["identity_checks"][0]["method"] == "other"
        assert deleted["recording_files"] == 2 and deleted["transcript_lines"] == 1
        assert deleted["chat_lines"] == 1 and deleted["booking_contact_erased"] is True
        assert not directory.exists()
        assert not (data_dir / "transcripts" / f"{record.id}.jsonl").exists()
        assert after["transcript"] == [] and after["chat"] == [] and after["recording_files"] == []
        assert after["booking"]["resident"]["name"] == ""
        actions = [e["action"] for e in after["audit"]]
        assert actions == ["subject.export", "subject.delete"]
        assert after["audit"][1]["detail"]["transcript_lines"] == 1
        await redis.aclose()
