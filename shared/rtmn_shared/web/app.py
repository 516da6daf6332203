"""The aiohttp application every service starts from: health, readiness, metrics, OpenAPI,
problems for every error, request ids, trace context and a body-size cap."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from rtmn_shared.db import UNAVAILABLE, Pool
from rtmn_shared.events import brokers
from rtmn_shared.logs import request_id_var
from rtmn_shared.metrics import HTTP_LATENCY, HTTP_REQUESTS, PROVIDER_SANDBOX
from rtmn_shared.tracing import continue_trace, current_traceparent
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.openapi import document
from rtmn_shared.web.problems import Problem
from rtmn_shared.web.routes import VERIFIER, Routes, json_response

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[\w.:-]{1,128}$")
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
READY_TIMEOUT = 1.0


@dataclass
class Readiness:
    """What /readyz checks: the service's own database, Redis and broker, plus its providers."""

    pool: Pool | None = None
    redis: Redis | None = None
    amqp_url: str | None = None
    providers: dict[str, str] = field(default_factory=dict)  # name -> "live" | "sandbox"
    # A service's own dependencies beyond these (an object store, a provider's status endpoint).
    extra: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    _broker_ok_until: float = field(default=0.0, init=False, repr=False)

    async def check(self) -> dict[str, str]:
        checks: dict[str, Callable[[], Awaitable[object]]] = {}
        if self.pool is not None:
            pool = self.pool
            checks["database"] = lambda: pool.fetchval("SELECT 1")
        if self.redis is not None:
            checks["redis"] = self.redis.ping
        if self.amqp_url is not None:
            checks["broker"] = self._broker
        checks.update(self.extra)
        results = await asyncio.gather(
            *(asyncio.wait_for(c(), READY_TIMEOUT) for c in checks.values()), return_exceptions=True
        )
        return {
            name: "ok" if not isinstance(r, BaseException) else f"down ({type(r).__name__})"
            for name, r in zip(checks, results, strict=True)
        }

    async def _broker(self) -> None:
        # A fresh connection proves more than a long-lived one; cached so probes stay cheap.
        if time.monotonic() < self._broker_ok_until:
            return
        assert self.amqp_url is not None
        connection = await brokers.connect(self.amqp_url, timeout=READY_TIMEOUT)
        await connection.close()
        self._broker_ok_until = time.monotonic() + 5.0


READINESS = web.AppKey("readiness", Readiness)


async def healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = request.app[READINESS]
    checks = await ready.check()
    healthy = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "providers": ready.providers,
    }
    return json_response(body, status=200 if healthy else 503)


async def metrics(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


def create_app(
    *,
    service: str,
    routes: Routes,
    verifier: TokenVerifier,
    readiness: Readiness,
    max_body_bytes: int = 64 * 1024,
    version: str = "0.1.0",
) -> web.Application:
    app = web.Application(middlewares=[_edge(service)], client_max_size=max_body_bytes)
    app[VERIFIER] = verifier
    if verifier.jwks is not None:
        app.cleanup_ctx.append(verifier.jwks.context)
    app[READINESS] = readiness
    for provider, mode in readiness.providers.items():
        PROVIDER_SANDBOX.labels(service, provider).set(mode == "sandbox")
    routes.install(app)
    spec = document(f"RTMN {service}", version, routes.specs)

    async def openapi(_: web.Request) -> web.Response:
        return json_response(spec)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    return app


def _edge(service: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def edge(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        id_token = request_id_var.set(request_id)
        trace_token = current_traceparent.set(continue_trace(request.headers.get("traceparent")))
        started = time.perf_counter()
        try:
            response = await _problems(request, handler, request_id)
        finally:
            request_id_var.reset(id_token)
            current_traceparent.reset(trace_token)
        elapsed = time.perf_counter() - started
        route = _route_name(request)
        HTTP_REQUESTS.labels(service, route, request.method, str(response.status)).inc()
        HTTP_LATENCY.labels(service, route, request.method).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        if response.status >= 400 and request.path not in _QUIET:
            log.info(
                "%s %s -> %d in %.1f ms",
                request.method,
                route,
                response.status,
                elapsed * 1000,
                extra={"request_id": request_id},
            )
        return response

    return edge


async def _problems(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    request_id: str,
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        # aiohttp's own words (sizes, parser states) are library text: ours are stable.
        detail = _OUR_WORDS.get(error.status) or HTTPStatus(error.status).phrase
        if error.status == 404:
            detail = f"no route for {request.method} {request.path}"
        return Problem(error.status, detail, headers=_kept_headers(error)).response()
    except asyncio.CancelledError:
        raise
    except UNAVAILABLE as error:
        # The database or Redis is away for a moment (a restart, a failover): worth a retry.
        log.warning(
            "%s %s: a backing service is unavailable (%s)",
            request.method,
            _route_name(request),
            type(error).__name__,
        )
        return Problem(
            503,
            "a backing service is briefly unavailable; try again shortly",
            headers={"Retry-After": "1"},
            correlation_id=request_id,
        ).response()
    except Exception:
        log.exception("unhandled error in %s %s", request.method, _route_name(request))
        return Problem(
            500,
            "an unexpected error occurred; quote the correlation id when reporting it",
            correlation_id=request_id,
        ).response()


_OUR_WORDS = {
    400: "the request could not be read",
    405: "this method is not allowed here",
    413: "the body is larger than this service takes",
}


def _kept_headers(error: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"
