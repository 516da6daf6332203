"""One trace id from the HTTP request, through the event, into the consumer's log lines."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from demo_events import payment, relay, start
from rtmn_shared.db import Pool
from rtmn_shared.events.catalogue import PaymentSuccess
from rtmn_shared.events.consumer import Delivery, Handler
from rtmn_shared.events.outbox import Outbox
from rtmn_shared.logs import JsonFormatter, mask_phone, redact_url
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Background, ClientFactory
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.web.app import Readiness, create_app
from rtmn_shared.web.auth import TokenVerifier
from rtmn_shared.web.routes import Call, Routes, json_response

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
log = logging.getLogger("demo.handler")


async def test_the_trace_id_flows_from_http_into_the_event_and_the_consumer_logs(
    clean_demo: Pool,
    suite: Suite,
    background: Background,
    http: ClientFactory,
) -> None:
    routes = Routes()
    outbox = Outbox("rtmn/demo")

    @routes.post("/pay")
    async def pay(call: Call) -> web.StreamResponse:
        async with clean_demo.acquire() as conn, conn.transaction():
            event = await outbox.add(conn, payment())
        return json_response({"event_id": str(event.id)}, status=201)

    async def consume(delivery: Delivery) -> None:
        log.info("applying the payment")

    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter("demo"))
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    await start(
        background,
        clean_demo,
        suite,
        Handler("traced", (PaymentSuccess,), consume),
        group="tracing",
    )
    background(relay(clean_demo, suite).run())
    app = create_app(
        service="demo",
        routes=routes,
        verifier=TokenVerifier(suite.public_key),
        readiness=Readiness(),
    )
    client = await http(app)
    response = await client.post(
        "/pay", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    )
    event_id = (await response.json())["event_id"]

    await wait_for(lambda: lines, message="the consumer's log line")
    log.removeHandler(handler)
    line = json.loads(lines[0])
    assert line["trace_id"] == TRACE_ID
    assert line["event_id"] == event_id
    stored = await clean_demo.fetchval("SELECT payload->>'traceparent' FROM outbox")
    assert stored.split("-")[1] == TRACE_ID


def test_log_lines_mask_phone_numbers_and_urls_hide_passwords() -> None:
    record = logging.makeLogRecord(
        {"msg": "sent to %s", "args": ("+919876543210",), "levelname": "INFO", "name": "x"}
    )
    line = json.loads(JsonFormatter("demo").format(record))
    assert line["msg"] == "sent to ***********10"
    assert mask_phone("order 12345 for 9876543210") == "order 12345 for ********10"
    assert redact_url("amqp://guest:s3cret@host:5672/") == "amqp://guest:***@host:5672/"
