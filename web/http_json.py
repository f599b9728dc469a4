"""JSON in and out at the HTTP boundary: the one request-body parser, query parsing, replies.

Bodies are parsed once, strictly, into a pydantic model:

- no body (or only whitespace) -> 400 ``empty_body``
- not JSON                     -> 400 ``invalid_json``
- JSON of the wrong shape      -> 422 ``invalid_request``, naming each field path
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from web.http_errors import raise_error, validation_fields, validation_message

M = TypeVar("M", bound=BaseModel)


async def json_body(request: web.Request, model: type[M]) -> M:
    """The request body as ``model``, or a 400/422 JSON error saying what to send."""
    raw = await request.read()
    if not raw.strip():
        raise_error(400, "empty_body", "Send a JSON object in the request body.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise_error(400, "invalid_json", "The request body is not valid JSON.")
        raise_error(422, "invalid_request", validation_message(exc), fields=validation_fields(exc))


def query_params(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``, or a 422 JSON error naming each parameter."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise_error(422, "invalid_request", validation_message(exc), fields=validation_fields(exc))


def model_response(reply: BaseModel | Sequence[BaseModel], status: int = 200) -> web.Response:
    """A model (or a list of models) serialized by pydantic."""
    if isinstance(reply, BaseModel):
        text = reply.model_dump_json()
    else:
        text = "[" + ",".join(m.model_dump_json() for m in reply) + "]"
    return web.Response(text=text, status=status, content_type="application/json")
