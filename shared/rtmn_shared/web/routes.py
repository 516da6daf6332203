"""Routes declared with their pydantic models, so validation and the OpenAPI document agree."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from rtmn_shared.web.auth import Caller, TokenVerifier
from rtmn_shared.web.problems import Problem

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[["Call"], Awaitable[web.StreamResponse]]

VERIFIER = web.AppKey("verifier", TokenVerifier)

USER = "user"  # any authenticated caller
Auth = str | tuple[str, ...] | None
"""None: public; USER: any caller; a scope, or a tuple of scopes any one of which will do."""


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    endpoint: Endpoint
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: Auth
    summary: str
    content_types: tuple[str, ...]

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes of which the caller needs one; () for any caller or a public route."""
        if self.auth is None or self.auth == USER:
            return ()
        return (self.auth,) if isinstance(self.auth, str) else self.auth


class Call:
    """One request as a handler sees it: the caller, and the body and query read by their models."""

    def __init__(self, request: web.Request, spec: RouteSpec, caller: Caller | None) -> None:
        self.request = request
        self.spec = spec
        self.caller = caller

    @property
    def user(self) -> Caller:
        if self.caller is None:
            raise RuntimeError(f"{self.spec.path} is declared without auth")
        return self.caller

    def path(self, name: str) -> str:
        value = self.request.match_info[name]
        if "\x00" in value:
            raise Problem(400, f"the path parameter {name!r} contains a NUL character")
        return value

    async def body(self, model: type[M]) -> M:
        assert model is self.spec.body, f"{self.spec.path} declares body={self.spec.body}"
        raw = await self.request.read()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Problem(400, "the request body is not valid JSON") from None
        return validate(model, data, status=422)

    def query(self, model: type[M]) -> M:
        assert model is self.spec.query, f"{self.spec.path} declares query={self.spec.query}"
        return validate(model, dict(self.request.query), status=400)


def _refuse_nul(data: Any, where: str = "body") -> None:
    """PostgreSQL text cannot hold NUL: refuse it here as a client error, not there as a 500."""
    if isinstance(data, str):
        if "\x00" in data:
            raise Problem(
                422,
                "the request has invalid fields",
                errors=[{"field": where, "message": "NUL characters are not accepted"}],
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            _refuse_nul(key, where)
            _refuse_nul(value, f"{where}.{key}" if where != "body" else str(key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _refuse_nul(item, f"{where}.{index}")


def validate(model: type[M], data: Any, *, status: int) -> M:
    _refuse_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise Problem(status, "the request has invalid fields", errors=fields) from None


def json_response(
    payload: BaseModel | list[Any] | dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json(by_alias=True).encode()
    else:
        body = orjson.dumps(payload)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


class Routes:
    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        auth: Auth = None,
        summary: str = "",
        content_types: tuple[str, ...] = ("application/json",),
    ) -> Callable[[Endpoint], Endpoint]:
        """`auth`: None for public routes, USER for any caller, or the scope(s) the caller needs."""

        def register(endpoint: Endpoint) -> Endpoint:
            self.specs.append(
                RouteSpec(
                    method,
                    path,
                    endpoint,
                    body,
                    query,
                    response,
                    status,
                    auth,
                    summary or " ".join((endpoint.__doc__ or "").split()),
                    content_types,
                )
            )
            return endpoint

        return register

    def get(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        return self.route("PUT", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        return self.route("DELETE", path, **options)

    def install(self, app: web.Application) -> None:
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path, _adapt(spec))


def _adapt(spec: RouteSpec) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    scopes = spec.scopes

    async def handler(request: web.Request) -> web.StreamResponse:
        caller = None
        if spec.auth is not None:
            caller = await request.app[VERIFIER].caller(request, scopes)
        return await spec.endpoint(Call(request, spec, caller))

    handler.__name__ = spec.endpoint.__name__
    return handler


PATH_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")
