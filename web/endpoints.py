"""One declarative entry per REST endpoint: it registers the route *and* documents it.

An ``Endpoint`` names the method, path, handler, request and response models, who may
call it and which errors it answers. ``add_endpoints`` puts it on the router; the
OpenAPI document (``web.openapi``) is built from the same entries, so a route cannot
be served undocumented or documented with a shape it does not return.

Handlers return the model itself (or ``None`` for 204, or a ready response for files);
the wrapper checks the reply is the documented model, serializes it with the
documented status, enforces staff access, and turns scheduler errors into their codes.

An entry with ``audit`` is written to the audit log (``web.audit``) after its handler
succeeds and before its answer leaves: who (the staff sign-in), from where, what
(``audit_target``: the path parameter naming the room or the staff member), plus the
query parameters named in ``audit_detail``. When the log cannot be written, the
answer is a 503, not the data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from kernel.roles import Role
from scheduler.errors import SchedulerError
from web.appkeys import AUDIT
from web.audit import AuditAction, AuditRecord
from web.auth import require_staff
from web.http_errors import raise_error, scheduler_error
from web.http_json import model_response

Reply = BaseModel | Sequence[BaseModel] | web.StreamResponse | None
Handler = Callable[[web.Request], Awaitable[Reply]]

_PATH_PARAM = re.compile(r"\{(\w+)\}")
logger = logging.getLogger(__name__)
#: a handler may name what it acted on, when no path parameter does (a new staff member)
AUDIT_TARGET = web.RequestKey("audit_target", str)
#: and add to the entry's detail (counts: what a deletion destroyed)
AUDIT_DETAIL = web.RequestKey("audit_detail", dict[str, Any])


class Access(StrEnum):
    PUBLIC = "public"
    #: a resident's booking or ticket key (``?key=``), or a staff sign-in; the handler checks
    KEY = "key"
    #: a signed-in staff member (``Authorization: Bearer``) with one of ``roles``
    STAFF = "staff"


@dataclass(frozen=True)
class Param:
    name: str
    where: str = "query"  # query | path | header
    description: str = ""
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    #: query parameters as one model (documented field by field)
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_list: bool = False
    status: int = 200
    #: extra parameters; path parameters not listed here are documented from the path
    params: tuple[Param, ...] = ()
    access: Access = Access.PUBLIC
    #: with ``Access.STAFF``: the roles allowed (admins always are); empty = any staff
    roles: tuple[Role, ...] = ()
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()
    #: written to the audit log on success (see the module's docstring)
    audit: AuditAction | None = None
    audit_target: str = ""
    audit_detail: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.roles and self.access is not Access.STAFF:
            raise ValueError(f"{self.method} {self.path}: roles need Access.STAFF")
        if self.response_list and self.response is None:
            raise ValueError(f"{self.method} {self.path}: a list of what?")
        if self.audit is not None and self.access is not Access.STAFF:
            raise ValueError(f"{self.method} {self.path}: audited entries need a staff sign-in")

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    def respond(self, reply: Reply) -> web.StreamResponse:
        """The HTTP answer for ``reply``; a reply other than the documented model is a bug."""
        if isinstance(reply, web.StreamResponse):
            return reply
        if reply is None:
            if self.response is not None:
                raise TypeError(f"{self.method} {self.path} returned nothing")
            return web.Response(status=self.status)
        expected = self.response
        if expected is None:
            ok = False
        elif isinstance(reply, BaseModel):
            ok = not self.response_list and isinstance(reply, expected)
        else:
            ok = self.response_list and all(isinstance(m, expected) for m in reply)
        if not ok:
            name = expected.__name__ if expected else "no body"
            shape = f"list[{name}]" if self.response_list else name
            raise TypeError(
                f"{self.method} {self.path} returned {type(reply).__name__}, documented {shape}"
            )
        return model_response(reply, self.status)


def route_handler(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of ``endpoint``: access check, handler, reply, error codes."""

    async def handle(request: web.Request) -> web.StreamResponse:
        claims = None
        if endpoint.access is Access.STAFF:
            claims = require_staff(request, *endpoint.roles)
        try:
            reply = await endpoint.handler(request)
        except SchedulerError as exc:
            scheduler_error(exc)
        response = endpoint.respond(reply)
        if endpoint.audit is not None and claims is not None:
            await _audit(request, endpoint, endpoint.audit, claims.username, claims.role.value)
        return response

    handle.__name__ = handle.__qualname__ = getattr(endpoint.handler, "__name__", "handle")
    return handle


async def _audit(
    request: web.Request, endpoint: Endpoint, action: AuditAction, actor: str, role: str
) -> None:
    detail: dict[str, str | int | float | bool | None] = {"route": endpoint.path}
    detail.update(
        {name: request.query[name] for name in endpoint.audit_detail if name in request.query}
    )
    detail.update(request.get(AUDIT_DETAIL) or {})
    record = AuditRecord(
        action=action,
        actor=actor,
        role=role,
        source=request.remote or "",
        target=request.get(AUDIT_TARGET) or request.match_info.get(endpoint.audit_target, ""),
        detail=detail,
    )
    log = request.app.get(AUDIT)
    if log is None:
        return  # an app composed without an audit log (a test of one module's routes)
    try:
        await log.record(record)
    except Exception:
        logger.exception("audit log not written for %s %s", endpoint.method, endpoint.path)
        raise_error(
            503,
            "audit_unavailable",
            "The audit log cannot be written just now, so this was not served. Try again shortly.",
        )


def add_endpoints(app: web.Application, endpoints: Sequence[Endpoint]) -> None:
    """Register every endpoint (a GET also answers HEAD, as aiohttp's ``add_get`` does)."""
    for endpoint in endpoints:
        handler = route_handler(endpoint)
        if endpoint.method == "GET":
            app.router.add_get(endpoint.path, handler)
        else:
            app.router.add_route(endpoint.method, endpoint.path, handler)
