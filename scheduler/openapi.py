"""An OpenAPI 3.1 document built from the same pydantic models that validate requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_REF = "#/components/schemas/{model}"


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
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_list: bool = False
    status: int = 200
    params: tuple[Param, ...] = ()
    auth: str | None = None  # None | "staff" | "admin" | "key"
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a stable code and a message saying what to fix."""

    error: ErrorDetail


def build_document(title: str, version: str, endpoints: list[Endpoint]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorBody}
    for ep in endpoints:
        if ep.request is not None:
            models.add(ep.request)
        if ep.response is not None:
            models.add(ep.response)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys, defs = models_json_schema([(m, "validation") for m in ordered], ref_template=_REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    ref = {m: keys[(m, "validation")] for m in ordered}

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "tags": [ep.tag]}
        op["operationId"] = (
            ep.method.lower()
            + "_"
            + ep.path.strip("/")
            .replace("/", "_")
            .replace("{", "")
            .replace("}", "")
            .replace(".", "_")
        )
        params = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in ep.params
        ]
        if params:
            op["parameters"] = params
        if ep.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref[ep.request]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            schema = ref[ep.response]
            if ep.response_list:
                schema = {"type": "array", "items": schema}
            ok["content"] = {ep.content_type: {"schema": schema}}
        elif ep.content_type != "application/json":
            ok["content"] = {ep.content_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(ep.status): ok}
        error_codes = set(ep.errors) | ({422} if ep.request or ep.params else set())
        if ep.auth in ("staff", "admin"):
            op["security"] = [{"staffBearer": []}]
            error_codes |= {401, 403}
        if ep.auth == "key":
            error_codes |= {403, 404}
        for code in sorted(error_codes):
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
            "schemas": schemas,
            "securitySchemes": {
                "staffBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "staff token from POST /api/staff/login",
                }
            },
        },
    }


_ERROR_TEXT = {
    400: "the body is not JSON",
    401: "not signed in",
    403: "not allowed (wrong role or wrong booking key)",
    404: "not found",
    409: "conflict: the slot was taken, or the state does not allow this",
    422: "invalid input; the message says which field and what to fix",
}
