"""The OpenAPI 3.1 document of a service, generated from its declared routes and models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from rtmn_shared.web.problems import PROBLEM_TYPE, ProblemBody
from rtmn_shared.web.routes import PATH_PARAM, RouteSpec

REF = "#/components/schemas/{model}"


def document(title: str, version: str, specs: list[RouteSpec]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ProblemBody}
    for spec in specs:
        models.update(m for m in (spec.body, spec.response) if m is not None)
    keyed, top = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)], ref_template=REF
    )
    refs: dict[Any, dict[str, Any]] = {model: schema for (model, _), schema in keyed.items()}
    problem = {PROBLEM_TYPE: {"schema": refs[ProblemBody]}}
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        path = PATH_PARAM.sub(r"{\1}", spec.path)
        operation: dict[str, Any] = {
            "operationId": spec.endpoint.__name__,
            "summary": spec.summary,
            "parameters": _parameters(spec),
            "responses": {
                str(spec.status): _response(spec, refs),
                "4XX": {"description": "a problem with the request", "content": problem},
                "5XX": {"description": "a problem on our side", "content": problem},
            },
        }
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {ct: {"schema": refs[spec.body]} for ct in spec.content_types},
            }
        if spec.auth is not None:
            # OpenAPI 3.1 lets a bearer requirement list roles: ours are the scopes, any one.
            operation["security"] = [{"bearer": [scope]} for scope in spec.scopes] or [
                {"bearer": []}
            ]
        paths.setdefault(path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAM.findall(spec.path)
    ]
    if spec.query is not None:
        schema = spec.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return params


def _response(spec: RouteSpec, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if spec.response is None:
        return {"description": "done"}
    return {
        "description": "success",
        "content": {"application/json": {"schema": refs[spec.response]}},
    }
