"""REST for admins: staff accounts (profile, hours, leave) and consultation topics."""

from __future__ import annotations

from aiohttp import web

from kernel.roles import Role
from scheduler.errors import UnknownTopicError
from scheduler.staff import StaffMember
from scheduler.topics import Topic
from scheduler.wire import StaffCreate, StaffUpdate
from web.appkeys import STAFF, TOPICS
from web.audit import AuditAction
from web.endpoints import AUDIT_TARGET, Access, Endpoint
from web.http_errors import raise_error
from web.http_json import json_body


async def _check_topics(request: web.Request, topics: list[str]) -> None:
    known = {t.id for t in await request.app[TOPICS].list()}
    unknown = [t for t in topics if t not in known]
    if unknown:
        raise UnknownTopicError(
            f"unknown topic(s) {', '.join(unknown)}; known topics: {', '.join(sorted(known))}"
        )


async def list_staff(request: web.Request) -> list[StaffMember]:
    return await request.app[STAFF].list()


async def create_staff(request: web.Request) -> StaffMember:
    body = await json_body(request, StaffCreate)
    await _check_topics(request, body.topics)
    member = StaffMember.model_validate(body.model_dump(exclude={"password"}))
    request[AUDIT_TARGET] = member.username
    return await request.app[STAFF].add(member, body.password)


async def update_staff(request: web.Request) -> StaffMember:
    body = await json_body(request, StaffUpdate)
    if body.username != request.match_info["username"]:
        raise_error(422, "invalid_request", "username in the body must match the URL")
    await _check_topics(request, body.topics)
    member = StaffMember.model_validate(body.model_dump())
    return await request.app[STAFF].update(member)


async def delete_staff(request: web.Request) -> None:
    await request.app[STAFF].remove(request.match_info["username"])


async def put_topic(request: web.Request) -> Topic:
    body = await json_body(request, Topic)
    if body.id != request.match_info["topic_id"]:
        raise_error(422, "invalid_request", "topic id in the body must match the URL")
    return await request.app[TOPICS].put(body)


async def delete_topic(request: web.Request) -> None:
    await request.app[TOPICS].remove(request.match_info["topic_id"])


_ADMIN = (Role.ADMIN,)

ENDPOINTS = (
    Endpoint("GET", "/api/staff", list_staff, "List staff", "admin", response=StaffMember,
             response_list=True, access=Access.STAFF, roles=_ADMIN),
    Endpoint("POST", "/api/staff", create_staff, "Add a staff member", "admin",
             request=StaffCreate, response=StaffMember, status=201, access=Access.STAFF,
             roles=_ADMIN, errors=(409,), audit=AuditAction.STAFF_CREATED),
    Endpoint("PUT", "/api/staff/{username}", update_staff, "Update profile, hours, leave",
             "admin", request=StaffUpdate, response=StaffMember, access=Access.STAFF,
             roles=_ADMIN, errors=(404,), audit=AuditAction.STAFF_UPDATED,
             audit_target="username"),
    Endpoint("DELETE", "/api/staff/{username}", delete_staff, "Remove a staff member", "admin",
             status=204, access=Access.STAFF, roles=_ADMIN, errors=(404,),
             audit=AuditAction.STAFF_REMOVED, audit_target="username"),
    Endpoint("PUT", "/api/topics/{topic_id}", put_topic, "Create or edit a topic", "admin",
             request=Topic, response=Topic, access=Access.STAFF, roles=_ADMIN),
    Endpoint("DELETE", "/api/topics/{topic_id}", delete_topic, "Remove a topic", "admin",
             status=204, access=Access.STAFF, roles=_ADMIN, errors=(404,)),
)  # fmt: skip
