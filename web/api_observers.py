"""REST: an observer's join link, made by the counselor of a consultation.

An observer (embassy staff watching the first consultations, a supervisor)
receives audio, video and captions but publishes nothing: the SFU gives their
connection no publish transceivers it accepts (``media.sfu``). They join through
the lobby like a resident, everyone sees them as "observer", and recording asks
their consent like everyone's.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from kernel.languages import Language
from kernel.roles import Role
from scheduler.join_links import JoinLinks
from signaling.protocol import RoomState
from web.appkeys import ROOMS, SETTINGS, TOKENS
from web.auth import require_staff
from web.endpoints import Access, Endpoint, Param
from web.http_errors import raise_error
from web.http_json import json_body

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class ObserverRequest(BaseModel):
    name: Name
    language: Language = "ko"


class ObserverLink(BaseModel):
    room_id: str
    link: str


async def create_observer_link(request: web.Request) -> ObserverLink:
    require_staff(request, Role.COUNSELOR)
    body = await json_body(request, ObserverRequest)
    room_id = request.match_info["id"]
    record = await request.app[ROOMS].get(room_id)
    if record is None:
        raise_error(404, "unknown_room", f"There is no consultation {room_id!r}.")
    if record.state is RoomState.ENDED:
        raise_error(410, "room_ended", "This consultation has ended.")
    settings = request.app[SETTINGS]
    links = JoinLinks(request.app[TOKENS], settings.base_url)
    link = links.link(
        room_id=room_id,
        role=Role.OBSERVER,
        name=body.name,
        language=body.language,
        ttl_s=settings.join_token_ttl_s,
    )
    return ObserverLink(room_id=room_id, link=link)


ENDPOINTS = (
    Endpoint("POST", "/api/rooms/{id}/observer", create_observer_link,
             "An observer's join link (receives, publishes nothing, joins via the lobby)",
             "rooms", request=ObserverRequest, response=ObserverLink, status=201,
             params=(Param("id", "path", "consultation room id"),),
             access=Access.STAFF, roles=(Role.COUNSELOR,), errors=(404, 410)),
)  # fmt: skip
