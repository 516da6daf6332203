"""Small local contract fakes of Mixpanel /import and GA4 Measurement Protocol, built on the
shared fake server (recording, armed faults). Stand-ins until tests/fakes ships its own.

Both check what the provider checks and remember what they accepted, so a test can count
batches, events per request and duplicates.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from aiohttp import web

from rtmn_fakes.auth import basic_credentials
from rtmn_fakes.base import RECORDED, FakeServer, json_response

INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
PLACEHOLDER_IDS = {"anon", "anonymous", "nil", "none", "null", "n/a", "undefined", "0", "-1"}
MAX_IMPORT_BYTES = 2 * 1024 * 1024
GA4_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class MixpanelFake(FakeServer):
    provider = "mixpanel"

    def __init__(
        self,
        *,
        api_secret: str = "mp-api-secret",  # noqa: S107 - a fake's test credential
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.api_secret = api_secret
        self.lock = threading.Lock()
        self.imported: dict[str, dict[str, Any]] = {}  # by $insert_id: Mixpanel's dedupe
        self.received_ids: list[str] = []  # every valid record, duplicates included
        self.invalid_ids: set[str] = set()  # records a test wants refused

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/import", self.import_events)]

    def fault_body(self, status: int) -> Any:
        return {"code": status, "error": "fault", "status": "Error"}

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if basic_credentials(request) != (self.api_secret, ""):
            return json_response(
                {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"}, 401
            )
        return None

    def reset_state(self) -> None:
        with self.lock:
            self.imported.clear()
            self.received_ids.clear()
            self.invalid_ids.clear()

    async def import_events(self, request: web.Request) -> web.StreamResponse:
        recorded = request[RECORDED]
        if len(recorded.body) > MAX_IMPORT_BYTES:
            return json_response({"code": 413, "error": "too large", "status": "Error"}, 413)
        records = recorded.json
        if request.query.get("strict") != "1" or not isinstance(records, list):
            return json_response({"code": 400, "error": "bad request", "status": "Error"}, 400)
        if len(records) > 2000:
            return json_response({"code": 400, "error": "over 2000", "status": "Error"}, 400)
        failed = []
        imported = 0
        with self.lock:
            for index, record in enumerate(records):
                problem = self._problem(record)
                if problem is not None:
                    field, message = problem
                    insert_id = record.get("properties", {}).get("$insert_id")
                    failed.append(
                        {
                            "index": index,
                            "$insert_id": insert_id,
                            "field": field,
                            "message": message,
                        }
                    )
                    continue
                insert_id = record["properties"]["$insert_id"]
                self.received_ids.append(insert_id)
                self.imported.setdefault(insert_id, record)
                imported += 1
        if failed:
            return json_response(
                {
                    "code": 400,
                    "error": "some data points in the request failed validation",
                    "failed_records": failed,
                    "num_records_imported": imported,
                    "status": "Bad Request",
                },
                400,
            )
        return json_response({"code": 200, "num_records_imported": imported, "status": "OK"})

    def _problem(self, record: Any) -> tuple[str, str] | None:  # noqa: PLR0911 - one per rule
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            return "event", "'event' is required"
        properties = record.get("properties")
        if not isinstance(properties, dict):
            return "properties", "'properties' must be an object"
        insert_id = properties.get("$insert_id")
        if not isinstance(insert_id, str) or not INSERT_ID.match(insert_id):
            return "properties.$insert_id", "'properties.$insert_id' is invalid"
        if insert_id in self.invalid_ids:
            return "properties.custom", "'properties.custom' is invalid: refused by the test"
        distinct_id = properties.get("distinct_id")
        if not isinstance(distinct_id, str) or distinct_id.lower() in PLACEHOLDER_IDS:
            return "properties.distinct_id", "'properties.distinct_id' is invalid"
        moment = properties.get("time")
        if not isinstance(moment, int | float) or isinstance(moment, bool):
            return "properties.time", "'properties.time' must be seconds or ms since epoch"
        seconds = moment / 1000 if moment > 1e11 else moment
        if seconds > time.time() + 3600 or seconds < 31_536_000:
            return "properties.time", "'properties.time' is out of range"
        return None


class Ga4Fake(FakeServer):
    """GA4 collects silently, so the fake keeps a list of what GA4 would have dropped."""

    provider = "ga4"

    def __init__(
        self,
        *,
        measurement_id: str = "G-TEST123",
        api_secret: str = "ga4-secret",  # noqa: S107 - a fake's test credential
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.measurement_id = measurement_id
        self.api_secret = api_secret
        self.lock = threading.Lock()
        self.collected: list[tuple[str, str | None, dict[str, Any]]] = []
        self.violations: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/mp/collect", self.collect), web.post("/debug/mp/collect", self.debug)]

    def reset_state(self) -> None:
        with self.lock:
            self.collected.clear()
            self.violations.clear()

    async def collect(self, request: web.Request) -> web.StreamResponse:
        body = request[RECORDED].json
        problems = self._problems(request)
        with self.lock:
            self.violations.extend(problems)
            if not problems:
                for event in body["events"]:
                    self.collected.append((body["client_id"], body.get("user_id"), event))
        return web.Response(status=204)

    async def debug(self, request: web.Request) -> web.StreamResponse:
        messages = [
            {"fieldPath": "events", "description": p, "validationCode": "VALUE_INVALID"}
            for p in self._problems(request)
        ]
        return json_response({"validationMessages": messages})

    def _problems(self, request: web.Request) -> list[str]:
        recorded = request[RECORDED]
        query = request.query
        if query.get("measurement_id") != self.measurement_id:
            return ["wrong measurement_id"]
        if query.get("api_secret") != self.api_secret:
            return ["wrong api_secret"]
        if len(recorded.body) >= 130_000:
            return ["body over 130 kB"]
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("client_id"), str):
            return ["client_id is required"]
        events = body.get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= 25:
            return [f"events must hold 1-25 items, not {len(events or [])}"]
        problems = []
        for index, event in enumerate(events):
            name = event.get("name") if isinstance(event, dict) else None
            if not isinstance(name, str) or not GA4_NAME.match(name):
                problems.append(f"event {index} has an invalid name {name!r}")
                continue
            params = event.get("params", {})
            if len(params) > 25:
                problems.append(f"event {index} has {len(params)} params")
            for key, value in params.items():
                if isinstance(value, str) and len(value) > 100:
                    problems.append(f"event {index} param {key} is over 100 characters")
        return problems
