"""REST: staff sign-in, consultation rooms and their join links (join step: ``web.api_join``)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from kernel.roles import Role
from scheduler.join_links import JoinLinks
from scheduler.staff import StaffMember
from signaling.protocol import Language, RoomInfo
from web.appkeys import LOGIN_GATE, LOGIN_LIMITER, ROOMS, SETTINGS, STAFF, TOKENS
from web.auth import require_staff
from web.endpoints import Access, Endpoint
from web.http_errors import raise_error
from web.http_json import json_body
from web.login_limiter import client_address

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


async def login(request: web.Request) -> LoginResponse:
    """Sign in: limited per account and per address (``web.login_limiter``), and bounded
    in how many are checked at once (each costs one scrypt): past that, 503."""
    body = await json_body(request, LoginRequest)
    settings = request.app[SETTINGS]
    limiter = request.app[LOGIN_LIMITER]
    address = client_address(request, settings.trusted_proxy_header)
    async with request.app[LOGIN_GATE].enter():
        if not await limiter.reserve(body.username, address):
            minutes = max(1, limiter.limits.window_s // 60)
            raise_error(
                429,
                "too_many_attempts",
                f"Too many failed sign-ins. Wait {minutes} minutes or ask an admin.",
                headers={"Retry-After": str(limiter.limits.window_s)},
            )
        member = await request.app[STAFF].authenticate(body.username, body.password)
        if member is None:
            raise_error(401, "bad_credentials", "Wrong username or password.")
        await limiter.succeeded(body.username, address)
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


ENDPOINTS = (
    Endpoint("POST", "/api/staff/login", login, "Staff sign-in", "staff",
             request=LoginRequest, response=LoginResponse, errors=(401, 429, 503)),
    Endpoint("POST", "/api/rooms", create_room, "Ad-hoc room with join links", "staff",
             request=CreateRoomRequest, response=RoomCreated, status=201, access=Access.STAFF,
             roles=(Role.COUNSELOR,)),
)  # fmt: skip
