"""The join step: who a link is for, and which node to connect to.

``GET /api/join-info?room=&t=`` answers on every node. It checks the link, then
finds the room's node or places the room on the least-loaded live node under its
limit (``signaling.placement``), and returns that node's public URL: the page
connects socket.io and its peer connection there. The page runs the join step
before every (re)connection, so when a node dies its rooms move on the next join.

``unreachable=NODE`` says the page could not reach that node. If it is the room's
holder and does not answer a probe either, the claim is fenced and the room moves
now, not when the dead node's heartbeat lapses.

Pages from any node of the deployment may call this one (a simple CORS GET:
``Access-Control-Allow-Origin`` for ``Settings.deployment_origins``), so a page
whose own node died can run the join step on another (``nodes`` in the answer).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, NoReturn

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import BaseModel, Field

from signaling.admission import AdmissionStore
from signaling.placement import NoCapacity, PlacementUnsettled
from signaling.protocol import ParticipantInfo, RoomInfo, RoomState
from signaling.tokens import TokenError
from web.appkeys import NODE_PROBE, PLACEMENT, REDIS, ROOMS, SETTINGS, TOKENS
from web.endpoints import Endpoint, Param
from web.http_errors import error_response, raise_error

logger = logging.getLogger(__name__)

PATH: Final = "/api/join-info"
#: The join step answers within this, or says the service is unavailable.
JOIN_TIMEOUT_S: Final = 4.0
RETRY_UNAVAILABLE_S: Final = 2
RETRY_NO_CAPACITY_S: Final = 5


class NodeRoute(BaseModel):
    """The node that holds the room now."""

    id: str
    url: str = Field(description="base URL: connect socket.io (path /socket.io/) here")
    epoch: int = Field(description="the room's claim epoch on that node")


class JoinInfo(BaseModel):
    """Who a join link lets in, and where."""

    you: ParticipantInfo
    room: RoomInfo
    admitted: bool = Field(
        default=False,
        description="a counselor let this person in already: the page goes straight back in",
    )
    node: NodeRoute
    nodes: list[str] = Field(
        default_factory=list,
        description="base URLs of the live nodes: where to run the join step again if "
        "this one cannot be reached",
    )


def _unavailable(code: str, message: str, retry_after_s: int) -> NoReturn:
    body = error_response(503, code, message)
    raise web.HTTPServiceUnavailable(
        text=body.text,
        content_type="application/json",
        headers={"Retry-After": str(retry_after_s)},
    )


async def join_info(request: web.Request) -> JoinInfo:
    app = request.app
    room_id = request.query.get("room")
    try:
        claims = app[TOKENS].verify_join(request.query.get("t"), room_id=room_id)
    except TokenError as exc:
        status = 401 if exc.code.value in ("token_missing", "token_invalid") else 403
        raise_error(status, exc.code.value, exc.message)
    placement = app[PLACEMENT]
    unreachable = request.query.get("unreachable") or None
    try:
        async with asyncio.timeout(JOIN_TIMEOUT_S):
            record = await app[ROOMS].get(claims.room_id)
            if record is None:
                raise_error(
                    404,
                    "unknown_room",
                    "This consultation does not exist. Check the link you were sent.",
                )
            if record.state is RoomState.ENDED:
                raise_error(410, "room_ended", "This consultation has ended.")
            admissions = AdmissionStore(app[REDIS])
            if await admissions.is_banned(record.id, claims.participant_id):
                raise_error(
                    403, "removed", "You were removed from this consultation by the counselor."
                )
            admitted = await admissions.is_admitted(record.id, claims.participant_id)
            fenced = None
            if unreachable and unreachable != placement.node_id:
                holder = await placement.holder(record.id)
                if (
                    holder is not None
                    and holder.claim.node_id == unreachable
                    and not await app[NODE_PROBE].alive(holder.node.base_url)
                ):
                    logger.warning(
                        "room %s: node %s is unreachable; moving the room off it",
                        record.id,
                        unreachable,
                    )
                    fenced = unreachable
            placed = await placement.place(record.id, fenced=fenced)
    except PlacementUnsettled as exc:
        logger.info("join step: %s", exc)
        _unavailable(
            "service_unavailable",
            "The service is coming back. The page tries again by itself.",
            1,
        )
    except NoCapacity as exc:
        logger.warning("join step for room %s: %s", claims.room_id, exc)
        _unavailable(
            "no_capacity",
            "Every server is full right now. Try again in a few minutes.",
            RETRY_NO_CAPACITY_S,
        )
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        logger.warning("join step for room %s failed: %s", claims.room_id, exc or type(exc))
        _unavailable(
            "service_unavailable",
            "The service is briefly unavailable. The page tries again by itself.",
            RETRY_UNAVAILABLE_S,
        )
    you = ParticipantInfo(
        id=claims.participant_id, name=claims.name, role=claims.role, language=claims.language
    )
    nodes = [n.info.base_url for n in placement.snapshot() if n.info.accepting]
    return JoinInfo(
        you=you,
        room=record.info(),
        admitted=admitted,
        node=NodeRoute(id=placed.claim.node_id, url=placed.node.base_url, epoch=placed.claim.epoch),
        nodes=sorted(set(nodes) | {app[SETTINGS].base_url}),
    )


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: pages of the deployment's other nodes may read the join step,
    and the join step's connection is not kept alive.

    The join step is the page's way back after a network change, and a kept-alive
    connection from before the change is dead: a request sent on it from the address the
    device just lost reaches the server, and the answer never reaches the device (seen in
    a traced address change: the page's join step hung, the server's answer unacknowledged
    in its socket). Closed after each answer, every join step starts a new connection.
    """
    if request.path != PATH:
        return
    response.force_close()  # the server closes it after this answer
    response.headers["Connection"] = "close"  # and says so (the prepare hook runs late)
    origin = request.headers.get("Origin")
    if origin and origin in request.app[SETTINGS].deployment_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


ENDPOINTS = (
    Endpoint("GET", PATH, join_info, "The join step: check a link, find the room's node",
             "rooms", response=JoinInfo,
             params=(Param("room", description="room id from the link"),
                     Param("t", description="join token from the link"),
                     Param("unreachable", description="id of a node the page could not "
                           "reach (the room moves off it if it is gone)")),
             errors=(401, 403, 404, 410, 503)),
)  # fmt: skip
