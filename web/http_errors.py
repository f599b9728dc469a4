"""JSON error responses: ``{"error": {"code", "message"}}`` with a message that says what to fix.

Every refusal leaves the server in this shape, including the ones aiohttp raises itself
(no such route, wrong method, body too large) and overload: a Redis pool that stays
busy past its timeout, or a bounded pool of work that is full, is answered 503 with
``Retry-After``, never 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, NoReturn

import aiohttp
import redis
from aiohttp import web
from pydantic import ValidationError

from kernel.log_limits import RateLimitedLog
from scheduler import errors as scheduler_errors

logger = logging.getLogger(__name__)

#: Seconds an overloaded server asks clients to wait.
RETRY_AFTER_S: Final = 2


def error_body(code: str, message: str, fields: list[str] | None = None) -> str:
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return json.dumps({"error": error}, ensure_ascii=False)


def error_response(
    status: int, code: str, message: str, fields: list[str] | None = None
) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return web.json_response({"error": error}, status=status)


def http_error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    fields: list[str] | None = None,
) -> web.HTTPError:
    """The exception that answers ``status`` with a JSON error body.

    ``fields`` names the request fields at fault (``invalid_request``), so a page can
    point at them in its own language; ``message`` is English, for logs and support.
    """
    exc_class = _STATUS.get(status, web.HTTPBadRequest)
    exc = exc_class(
        text=error_body(code, message, fields), content_type="application/json", headers=headers
    )
    if exc.status != status:  # 405, 413, ...: aiohttp's classes want other arguments
        exc.set_status(status)
    return exc


def raise_error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    fields: list[str] | None = None,
) -> NoReturn:
    """Abort the request with a JSON error body (see ``http_error``)."""
    raise http_error(status, code, message, headers, fields)


class Overloaded(Exception):
    """A bounded pool is full: the request is answered 503 with ``Retry-After``."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


def overloaded_error(message: str, retry_after_s: int = RETRY_AFTER_S) -> web.HTTPError:
    return http_error(503, "overloaded", message, headers={"Retry-After": str(retry_after_s)})


def validation_fields(exc: ValidationError) -> list[str]:
    """The top-level fields a validation error is about, in order, without repeats."""
    fields: list[str] = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "body"
        if name not in fields:
            fields.append(name)
    return fields


def validation_message(exc: ValidationError) -> str:
    """One readable line per problem: ``field.path: what is wrong``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


_STATUS: dict[int, type[web.HTTPError]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    410: web.HTTPGone,
    422: web.HTTPUnprocessableEntity,
    429: web.HTTPTooManyRequests,
    500: web.HTTPInternalServerError,
    503: web.HTTPServiceUnavailable,
}

#: Codes of the refusals aiohttp raises itself, by status.
_GENERIC: Final[dict[int, tuple[str, str]]] = {
    400: ("bad_request", "The request could not be read."),
    401: ("not_signed_in", "Sign in first."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Nothing is here. The REST API is listed at /api/openapi.json."),
    413: ("body_too_large", "The request body is too large."),
    414: ("uri_too_long", "The address is too long."),
    429: ("too_many_requests", "Too many requests; wait a moment."),
    503: ("overloaded", "The server is busy; try again in a moment."),
}


def _as_json_error(exc: web.HTTPException) -> web.HTTPException:
    """``exc`` in the JSON error shape (it already is, or it has no body: unchanged)."""
    if exc.status < 400 or (exc.content_type == "application/json"):
        return exc
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        code, message = "method_not_allowed", f"{exc.method} is not allowed here; use {allowed}."
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        code, message = "body_too_large", exc.text or _GENERIC[413][1]
    else:
        code, message = _GENERIC.get(exc.status, ("http_error", exc.reason))
    return http_error(exc.status, code, message, headers)


#: Logs of failures that a flood can repeat: one line per kind per interval.
_FAILURE_LOG: Final = RateLimitedLog(logger, interval_s=10.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The websocket a request was upgraded to (set by ``remember_upgrade``).
UPGRADED: Final = web.RequestKey("upgraded_websocket", web.WebSocketResponse)


async def remember_upgrade(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: keep the websocket a handler opened, for ``json_errors``."""
    if isinstance(response, web.WebSocketResponse):
        request[UPGRADED] = response


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error in the JSON shape; overload as 503 + Retry-After; never a bare 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        raise _as_json_error(exc) from None
    except Overloaded as exc:
        _FAILURE_LOG.warning("overloaded", "%s %s: %s", request.method, request.path, exc)
        raise overloaded_error(exc.message, exc.retry_after_s) from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # A pool that stayed busy past its timeout, or Redis away: both pass.
        _FAILURE_LOG.warning("redis", "%s %s: redis: %s", request.method, request.path, exc)
        raise overloaded_error(
            "The server is busy or its storage is unreachable; try again shortly."
        ) from None
    except Exception as exc:
        upgraded: web.WebSocketResponse | None = request.get(UPGRADED)
        if upgraded is not None:
            # engine.io let a malformed frame escape its websocket loop (it decodes the
            # packet outside its own try): nothing more can be sent as HTTP on this
            # connection. Close the websocket; engine.io's ping timeout retires its socket.
            _FAILURE_LOG.warning(
                f"ws:{type(exc).__name__}",
                "%s: malformed websocket frame (%s: %s); connection closed",
                request.path,
                type(exc).__name__,
                exc,
            )
            await upgraded.close(code=aiohttp.WSCloseCode.PROTOCOL_ERROR)
            return upgraded
        _FAILURE_LOG.exception("unexpected", "%s %s failed", request.method, request.path)
        raise http_error(
            500, "server_error", "The server could not do that; the failure was logged."
        ) from None


#: The HTTP status of each scheduler error (most specific first); anything else is 400.
_SCHEDULER_STATUS: tuple[tuple[type[scheduler_errors.SchedulerError], int], ...] = (
    (scheduler_errors.UnknownTopicError, 422),
    (scheduler_errors.InvalidSlotError, 422),
    (scheduler_errors.WeakPasswordError, 422),
    (scheduler_errors.SlotTakenError, 409),
    (scheduler_errors.UnknownBookingError, 404),
    (scheduler_errors.UnknownTicketError, 404),
    (scheduler_errors.UnknownStaffError, 404),
    (scheduler_errors.BookingKeyError, 403),
    (scheduler_errors.IllegalTransition, 409),
    (scheduler_errors.StaffExistsError, 409),
)


def scheduler_error(exc: scheduler_errors.SchedulerError) -> NoReturn:
    """Abort with the status and code of a scheduler error; its message says what to fix."""
    status = next((s for cls, s in _SCHEDULER_STATUS if isinstance(exc, cls)), 400)
    raise_error(status, exc.code, str(exc))
