"""The shared machinery: recording, armed faults, async and threaded lifecycles."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from rtmn_fakes.auth import basic_credentials
from rtmn_fakes.base import DROPPED, RECORDED, FakeServer, json_response
from rtmn_fakes.ids import next_id


class EchoFake(FakeServer):
    """A minimal provider: counts what it carried out, echoes the parsed request."""

    provider = "echo"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handled = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/v1/{name}", self._echo)]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if request.headers.get("X-Key") == "bad":
            return json_response({"error": "unauthorised"}, 401)
        return None

    def fault_body(self, status: int) -> Any:
        return {"echo_error": status}

    def reset_state(self) -> None:
        self.handled = 0

    async def _echo(self, request: web.Request) -> web.Response:
        with self._lock:
            self.handled += 1
        recorded = request[RECORDED]
        return json_response({"json": recorded.json, "form": recorded.form})


@pytest.fixture
async def fake() -> AsyncIterator[EchoFake]:
    async with EchoFake() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, fake: FakeServer, path: str = "/v1/a", **kwargs: Any
) -> tuple[int, bytes, Any]:
    async with http.post(fake.url + path, **kwargs) as response:
        return response.status, await response.read(), response.headers


async def test_requests_are_recorded_with_parsed_bodies(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    await call(http, fake, "/v1/a?x=1", json={"k": [1, 2]}, headers={"X-Trace": "t-1"})
    await call(http, fake, "/v1/b", data={"To": "+91", "Body": "hi"})

    first, second = fake.requests
    assert (first.method, first.path, first.query, first.json) == (
        "POST",
        "/v1/a",
        {"x": "1"},
        {"k": [1, 2]},
    )
    assert first.headers["x-trace"] == "t-1"
    assert (second.form, second.form_items) == (
        {"To": "+91", "Body": "hi"},
        [("To", "+91"), ("Body", "hi")],
    )
    assert [r.status for r in fake.requests] == [200, 200]
    assert fake.requests_to("/b") == [second]
    assert fake.requests_to("/b", method="GET") == []


async def test_fail_next_spends_itself_on_matching_requests_only(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    fake.fail_next(2, status=503, retry_after=3, path="/v1/pay")

    other = await call(http, fake, "/v1/other")
    first = await call(http, fake, "/v1/pay")
    second = await call(http, fake, "/v1/pay")
    third = await call(http, fake, "/v1/pay")

    assert other[0] == 200
    assert [first[0], second[0], third[0]] == [503, 503, 200]
    assert first[1] == b'{"echo_error": 503}'  # the provider's own error shape
    assert first[2]["Retry-After"] == "3"
    assert fake.handled == 2  # the failed requests were never carried out


async def test_fault_filters_skip_and_explicit_bodies(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    fake.fail_next(1, status=429, body={"custom": True}, method="POST", skip=1)
    fake.fail_next(1, status=500, body="plain text", where=lambda r: r.query.get("boom") == "1")

    results = [await call(http, fake, "/v1/a?boom=1"), await call(http, fake, "/v1/a?boom=1")]

    # The first armed fault skips one request, so the second fault takes it instead.
    assert [(s, b) for s, b, _ in results] == [(500, b"plain text"), (429, b'{"custom": true}')]


async def test_delay_outlasts_the_client_but_the_request_is_still_carried_out(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    fake.delay_next(1, 0.5)

    with pytest.raises(TimeoutError):
        await call(http, fake, timeout=aiohttp.ClientTimeout(total=0.1))
    [late] = await fake.wait_for_requests_async(1, "/v1/a", timeout=5)

    assert late.status == 200
    assert fake.handled == 1


async def test_drop_closes_the_connection_and_can_happen_after_handling(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    fake.drop_next(1)
    fake.drop_next(1, after_handling=True)

    for _ in range(2):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await call(http, fake)

    assert [r.status for r in fake.requests] == [DROPPED, DROPPED]
    assert fake.handled == 1


async def test_malformed_answers_200_with_html(fake: EchoFake, http: aiohttp.ClientSession) -> None:
    fake.malformed_next(1)

    async with http.post(fake.url + "/v1/a") as response:
        assert (response.status, response.content_type) == (200, "text/html")
        with pytest.raises(aiohttp.ContentTypeError):
            await response.json()


async def test_authentication_runs_before_the_handler(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await call(http, fake, headers={"X-Key": "bad"})

    assert status == 401
    assert fake.handled == 0


async def test_reset_forgets_requests_faults_and_state(
    fake: EchoFake, http: aiohttp.ClientSession
) -> None:
    await call(http, fake)
    fake.fail_next(1)

    fake.reset()

    assert (fake.requests, fake.handled) == ([], 0)
    assert (await call(http, fake))[0] == 200


async def test_waiting_times_out_with_a_deadline(fake: EchoFake) -> None:
    started = time.monotonic()

    with pytest.raises(TimeoutError, match="expected 1 matching requests"):
        await fake.wait_for_requests_async(1, timeout=0.2)

    assert time.monotonic() - started < 2


async def test_close_does_not_wait_for_a_long_delay(http: aiohttp.ClientSession) -> None:
    fake = await EchoFake().start()
    fake.delay_next(1, 60)
    pending = asyncio.create_task(call(http, fake))
    await fake.wait_for_requests_async(1, answered=False)
    started = time.monotonic()

    await fake.close()
    try:
        status: int | None = (await pending)[0]
    except aiohttp.ClientError:
        status = None  # the connection may go before the 503 is written

    assert status in (503, None)
    assert time.monotonic() - started < 5
    assert fake.handled == 0


def test_threaded_fake_serves_blocking_clients_on_a_chosen_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with EchoFake(port=port) as fake:
        assert fake.url == f"http://127.0.0.1:{port}"
        assert requests.post(fake.url + "/v1/a", json={"n": 1}, timeout=5).json()["json"] == {
            "n": 1
        }
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            EchoFake(port=port).start_in_thread()
        assert fake.wait_for_requests(1)[0].json == {"n": 1}

    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url


def test_ids_are_provider_shaped_and_never_repeat() -> None:
    ids = {next_id("order_") for _ in range(1000)}

    assert len(ids) == 1000
    assert all(len(i) == len("order_") + 14 and i.startswith("order_Fk") for i in ids)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic dXNlcjpwYXNz", ("user", "pass")),
        ("Basic dXNlcjo=", ("user", "")),
        ("Basic not base64!", None),
        ("Basic dXNlcg==", None),  # no colon
        ("Bearer abc", None),
    ],
)
def test_basic_credentials(header: str, expected: tuple[str, str] | None) -> None:
    request = make_mocked_request("GET", "/", headers={"Authorization": header})

    assert basic_credentials(request) == expected
