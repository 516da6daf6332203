"""RFC 9457 problem details: every error a client sees, and nothing it should not."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field

PROBLEM_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class ProblemBody(BaseModel):
    """The problem document, as OpenAPI shows it."""

    type: str = Field(default="about:blank")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type
        self.headers = headers or {}
        self.extra = extra

    def response(self, instance: str | None = None) -> web.Response:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return web.Response(
            status=self.status,
            body=orjson.dumps(body),
            content_type=PROBLEM_TYPE,
            headers=self.headers,
        )


def too_many_requests(
    retry_after: int, detail: str = "too many requests; try again later"
) -> Problem:
    return Problem(429, detail, headers={"Retry-After": str(max(1, retry_after))})


def service_unavailable(detail: str, retry_after: int | None = None) -> Problem:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Problem(503, detail, headers=headers)
