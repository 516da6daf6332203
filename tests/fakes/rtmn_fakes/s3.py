"""S3 for tests: moto's ThreadedMotoServer behind a thin proxy that can be told to fail.

Point clients at `fake.url` (the proxy); every request is recorded and forwarded byte for
byte, so the base's faults apply to S3 too. `fail_next_put()` fails only PutObject calls,
with S3's XML error. botocore retries 500/503 (and SlowDown): arm as many failures as the
client makes attempts, or fail with a code it does not retry (403 AccessDenied).
moto does not check signatures or presigned-URL expiry, so neither does this fake.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import requests
from aiohttp import web
from moto.server import ThreadedMotoServer

from rtmn_fakes.base import RECORDED, FakeServer
from rtmn_fakes.faults import Fault
from rtmn_fakes.recording import RecordedRequest

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "host",
        "content-length",
    }
)
NOT_PUT_OBJECT = frozenset({"uploadId", "partNumber", "acl", "tagging", "retention", "legal-hold"})
MESSAGES = {
    "InternalError": "We encountered an internal error. Please try again.",
    "SlowDown": "Please reduce your request rate.",
    "ServiceUnavailable": "Service is unable to handle request.",
    "AccessDenied": "Access Denied",
}


def is_put_object(request: RecordedRequest) -> bool:
    bucket_and_key = request.path.strip("/").split("/", 1)
    return (
        request.method == "PUT"
        and len(bucket_and_key) == 2
        and bool(bucket_and_key[1])
        and "x-amz-copy-source" not in request.headers
        and not NOT_PUT_OBJECT & set(request.query)
    )


def s3_error(code: str, resource: str = "") -> bytes:
    message = MESSAGES.get(code, code)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>FAKE0000000000000000</RequestId></Error>"
    ).encode()


class S3Fake(FakeServer):
    provider = "s3"
    auto_decompress = False  # objects stored with Content-Encoding: gzip must pass untouched
    client_max_size = 1024**3

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self._moto: ThreadedMotoServer | None = None
        self._moto_url: str | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def endpoint_url(self) -> str:
        """What to pass as `endpoint_url` to boto3/aioboto3: the failing proxy."""
        return self.url

    @property
    def moto_url(self) -> str:
        """moto itself, bypassing the proxy and its faults."""
        if self._moto_url is None:
            raise RuntimeError("S3Fake is not running")
        return self._moto_url

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/{tail:.*}", self._forward)]

    def fault_body(self, status: int) -> Any:
        return s3_error(
            {500: "InternalError", 503: "SlowDown", 403: "AccessDenied"}.get(
                status, "InternalError"
            )
        )

    def fault_response(self, fault: Fault) -> web.StreamResponse:
        response = super().fault_response(fault)
        response.content_type = "application/xml"
        return response

    def fail_next_put(
        self, n: int = 1, status: int = 500, code: str = "InternalError", *, skip: int = 0
    ) -> None:
        """Fail the next `n` PutObject calls (after letting `skip` through) with `code`."""
        self.fail_next(n, status, body=s3_error(code), where=is_put_object, skip=skip)

    def reset_state(self) -> None:
        if self._moto_url is not None:
            # moto's own reset endpoint; requests comes with moto's server extra.
            requests.post(f"{self._moto_url}/moto-api/reset", timeout=5).raise_for_status()

    async def start(self) -> S3Fake:
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        await asyncio.to_thread(moto.start)
        host, port = moto.get_host_and_port()
        self._moto, self._moto_url = moto, f"http://{host}:{port}"
        self._http = aiohttp.ClientSession(auto_decompress=False)
        try:
            await super().start()
        except BaseException:
            await self._stop_moto()
            raise
        return self

    async def close(self) -> None:
        await super().close()
        await self._stop_moto()

    async def _stop_moto(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        moto, self._moto, self._moto_url = self._moto, None, None
        if moto is not None:
            await asyncio.to_thread(moto.stop)
            # ThreadedMotoServer.stop() leaves the listening socket open.
            if moto._server is not None:
                moto._server.server_close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._http is None or self._moto_url is None:
            raise web.HTTPServiceUnavailable()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._http.request(
            request.method,
            self._moto_url + request.path_qs,
            headers=headers,
            data=request[RECORDED].body,
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            skip = HOP_BY_HOP if request.method != "HEAD" else HOP_BY_HOP - {"content-length"}
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in skip}
            return web.Response(status=upstream.status, body=body, headers=kept)
