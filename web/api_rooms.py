"""REST: staff sign-in, consultation rooms and their join links, join-link checks."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from kernel.roles import Role
from scheduler.join_links import JoinLinks
from scheduler.staff import StaffMember
from signaling.admission import AdmissionStore
from signaling.protocol import Language, ParticipantInfo, RoomInfo, RoomState
from signaling.tokens import TokenError
from web.appkeys import REDIS, ROOMS, SETTINGS, STAFF, TOKENS
from web.auth import require_staff
from web.endpoints import Access, Endpoint, Param
from web.http_errors import raise_error
from web.http_json import json_body

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    staff: StaffMember


class Invitee(BaseModel):
    name: Name
    language: Language = "ko"


class CreateRoomRequest(BaseModel):
    title: str = Field(default="Consultation", min_length=1, max_length=200)
    topic: str | None = Field(default=None, max_length=64)
    resident: Invitee
    interpreter: Invitee | None = None
    counselor_language: Language = "ko"


class RoomLinks(BaseModel):
    room_id: str
    resident: str
    counselor: str
    interpreter: str | None = None


class RoomCreated(BaseModel):
    room: RoomInfo
    links: RoomLinks


class JoinInfo(BaseModel):
    """Who a join link lets in, and where."""

    you: ParticipantInfo
    room: RoomInfo
    admitted: bool = Field(
        default=False,
        description="a counselor let this person in already: the page goes straight back in",
    )


#: Failed sign-ins allowed per username and per client address in LOGIN_WINDOW_S.
LOGIN_FAILURES_ALLOWED = 10
LOGIN_WINDOW_S = 15 * 60


async def login(request: web.Request) -> LoginResponse:
    body = await json_body(request, LoginRequest)
    redis = request.app[REDIS]
    keys = [f"sb:login-fail:user:{body.username}", f"sb:login-fail:addr:{request.remote}"]
    counts = [int(v) for v in await redis.mget(keys) if v is not None]
    if counts and max(counts) >= LOGIN_FAILURES_ALLOWED:
        raise_error(
            429,
            "too_many_attempts",
            f"Too many failed sign-ins. Wait {LOGIN_WINDOW_S // 60} minutes or ask an admin.",
        )
    member = await request.app[STAFF].authenticate(body.username, body.password)
    if member is None:
        async with redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, LOGIN_WINDOW_S)  # sliding: each failure renews the window
            await pipe.execute()
        raise_error(401, "bad_credentials", "Wrong username or password.")
    await redis.delete(keys[0])
    token = request.app[TOKENS].issue_staff(
        username=member.username,
        role=member.role,
        name=member.display_name,
        ttl_s=request.app[SETTINGS].staff_token_ttl_s,
    )
    return LoginResponse(token=token, staff=member)


async def create_room(request: web.Request) -> RoomCreated:
    staff = require_staff(request)
    body = await json_body(request, CreateRoomRequest)
    settings = request.app[SETTINGS]
    links = JoinLinks(request.app[TOKENS], settings.base_url)
    record = await request.app[ROOMS].create(
        title=body.title, topic=body.topic, created_by=staff.username
    )
    ttl = settings.join_token_ttl_s

    def link(role: Role, name: str, language: str) -> str:
        return links.link(room_id=record.id, role=role, name=name, language=language, ttl_s=ttl)

    return RoomCreated(
        room=record.info(),
        links=RoomLinks(
            room_id=record.id,
            resident=link(Role.RESIDENT, body.resident.name, body.resident.language),
            counselor=link(Role.COUNSELOR, staff.name, body.counselor_language),
            interpreter=(
                link(Role.INTERPRETER, body.interpreter.name, body.interpreter.language)
                if body.interpreter
                else None
            ),
        ),
    )


async def join_info(request: web.Request) -> JoinInfo:
    room_id = request.query.get("room")
    try:
        claims = request.app[TOKENS].verify_join(request.query.get("t"), room_id=room_id)
    except TokenError as exc:
        status = 401 if exc.code.value in ("token_missing", "token_invalid") else 403
        raise_error(status, exc.code.value, exc.message)
    record = await request.app[ROOMS].get(claims.room_id)
    if record is None:
        raise_error(
            404, "unknown_room", "This consultation does not exist. Check the link you were sent."
        )
    if record.state is RoomState.ENDED:
        raise_error(410, "room_ended", "This consultation has ended.")
    admissions = AdmissionStore(request.app[REDIS])
    if await admissions.is_banned(record.id, claims.participant_id):
        raise_error(403, "removed", "You were removed from this consultation by the counselor.")
    you = ParticipantInfo(
        id=claims.participant_id,
        name=claims.name,
        role=claims.role,
        language=claims.language,
    )
    admitted = await admissions.is_admitted(record.id, claims.participant_id)
    return JoinInfo(you=you, room=record.info(), admitted=admitted)


ENDPOINTS = (
    Endpoint("POST", "/api/staff/login", login, "Staff sign-in", "staff",
             request=LoginRequest, response=LoginResponse, errors=(401, 429)),
    Endpoint("POST", "/api/rooms", create_room, "Ad-hoc room with join links", "staff",
             request=CreateRoomRequest, response=RoomCreated, status=201, access=Access.STAFF,
             roles=(Role.COUNSELOR,)),
    Endpoint("GET", "/api/join-info", join_info, "Check a join link", "rooms",
             response=JoinInfo,
             params=(Param("room", description="room id from the link"),
                     Param("t", description="join token from the link")),
             errors=(401, 403, 404, 410)),
)  # fmt: skip
