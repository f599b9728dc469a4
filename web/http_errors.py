"""JSON error responses: ``{"error": {"code", "message"}}`` with a message that says what to fix."""

from __future__ import annotations

from typing import NoReturn

from aiohttp import web
from pydantic import ValidationError


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def raise_error(status: int, code: str, message: str) -> NoReturn:
    """Abort the request with a JSON error body."""
    exc_class = _STATUS.get(status, web.HTTPBadRequest)
    raise exc_class(
        text=error_response(status, code, message).text, content_type="application/json"
    )


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
