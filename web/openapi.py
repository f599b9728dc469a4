"""The OpenAPI 3.1 document, built from the same ``Endpoint`` table that registers the routes.

Schemas come from the pydantic models that validate requests and build replies, so
``GET /api/openapi.json`` is what the server does, not a description kept beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.endpoints import Access, Endpoint

_REF = "#/components/schemas/{model}"
OPENAPI_PATH = "/api/openapi.json"


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a stable code and a message saying what to fix."""

    error: ErrorDetail


_OK_TEXT = {200: "OK", 201: "created", 204: "done; no body"}
_ERROR_TEXT = {
    400: "the body is missing or not JSON, or a parameter is malformed",
    401: "not signed in",
    403: "not allowed (wrong role or wrong booking key)",
    404: "not found",
    409: "conflict: the slot was taken, or the state does not allow this",
    410: "gone: the consultation has ended",
    422: "invalid input; the message says which field and what to fix",
    429: "too many attempts; wait before trying again",
}


def _operation_id(endpoint: Endpoint) -> str:
    path = endpoint.path.strip("/").replace("/", "_").replace(".", "_")
    return endpoint.method.lower() + "_" + path.replace("{", "").replace("}", "")


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    given = {p.name for p in endpoint.params if p.where == "path"}
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in endpoint.path_params
        if name not in given
    ]
    params += [
        {
            "name": p.name,
            "in": p.where,
            "required": p.required or p.where == "path",
            "description": p.description,
            "schema": p.schema,
        }
        for p in endpoint.params
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if "description" in prop:
                param["description"] = prop["description"]
            param["schema"] = {k: v for k, v in prop.items() if k not in ("title", "description")}
            params.append(param)
    return params


def _errors(endpoint: Endpoint) -> set[int]:
    codes = set(endpoint.errors)
    if endpoint.request is not None:
        codes |= {400, 422}
    if endpoint.query is not None:
        codes.add(422)
    if endpoint.access is Access.STAFF:
        codes |= {401, 403}
    if endpoint.access is Access.KEY:
        codes |= {403, 404}
    return codes


def build_document(title: str, version: str, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorBody}
    for ep in endpoints:
        models |= {m for m in (ep.request, ep.response) if m is not None}
    ordered = sorted(models, key=lambda m: m.__name__)
    keys, defs = models_json_schema([(m, "validation") for m in ordered], ref_template=_REF)
    ref = {m: keys[(m, "validation")] for m in ordered}

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": _operation_id(ep),
        }
        if ep.access is Access.STAFF:
            op["security"] = [{"staffBearer": []}]
            if ep.roles:
                allowed = ", ".join(r.value for r in ep.roles)
                op["description"] = f"Staff roles: {allowed} (admins always may)."
        elif ep.access is Access.KEY:
            op["description"] = "The resident's key (?key=), or a staff sign-in."
        params = _parameters(ep)
        if params:
            op["parameters"] = params
        if ep.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref[ep.request]}},
            }
        ok: dict[str, Any] = {"description": _OK_TEXT.get(ep.status, "OK")}
        if ep.response is not None:
            schema = ref[ep.response]
            if ep.response_list:
                schema = {"type": "array", "items": schema}
            ok["content"] = {ep.content_type: {"schema": schema}}
        elif ep.content_type != "application/json":
            ok["content"] = {ep.content_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(ep.status): ok}
        for code in sorted(_errors(ep)):
            responses[str(code)] = {
                "description": _ERROR_TEXT.get(code, "error"),
                "content": {"application/json": {"schema": ref[ErrorBody]}},
            }
        op["responses"] = responses
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": dict(defs.get("$defs", {})),
            "securitySchemes": {
                "staffBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "staff token from POST /api/staff/login",
                }
            },
        },
    }


def openapi_endpoint(endpoints: Sequence[Endpoint], *, version: str) -> Endpoint:
    """``GET /api/openapi.json``: the document of ``endpoints`` and of itself."""
    document: dict[str, Any] = {}

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    this = Endpoint(
        "GET", OPENAPI_PATH, openapi_json, "This document (OpenAPI 3.1)", "meta",
        content_type="application/json",
    )  # fmt: skip
    document.update(build_document("Seoulbridge API", version, [*endpoints, this]))
    return this
