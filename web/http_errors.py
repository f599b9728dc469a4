"""JSON error responses: ``{"error": {"code", "message"}}`` with a message that says what to fix."""

from __future__ import annotations

from typing import NoReturn

from aiohttp import web
from pydantic import ValidationError

from scheduler import errors as scheduler_errors


def error_response(
    status: int, code: str, message: str, fields: list[str] | None = None
) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return web.json_response({"error": error}, status=status)


def raise_error(status: int, code: str, message: str, fields: list[str] | None = None) -> NoReturn:
    """Abort the request with a JSON error body.

    ``fields`` names the request fields at fault (``invalid_request``), so a page can
    point at them in its own language; ``message`` is English, for logs and support.
    """
    exc_class = _STATUS.get(status, web.HTTPBadRequest)
    raise exc_class(
        text=error_response(status, code, message, fields).text, content_type="application/json"
    )


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
    413: web.HTTPRequestEntityTooLarge,
    422: web.HTTPUnprocessableEntity,
    429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,
}


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
