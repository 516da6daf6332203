"""Mixpanel Ingestion `POST /import`, in both of its dialects:

* `?strict=1` with a JSON (or NDJSON) body, gzip or plain: each event is validated and the
  answer is the published `{code, num_records_imported, status}` or a 400 listing
  `failed_records`; valid events of a failing batch are still imported, as Mixpanel does.
* the SDK's form post (`data=<json>&verbose=1`), answered `{"error": null, "status": 1}`;
  invalid events are dropped silently there (kept in `fake.dropped` for tests).

Mixpanel deduplicates on `$insert_id` later, at query time; the fake keeps every copy and
`insert_ids()` lists them with repeats, so tests can count duplicates.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from rtmn_fakes.auth import basic_credentials
from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.payloads import load

MAX_EVENTS = 2000
MAX_BYTES = 2 * 1024 * 1024  # as sent, i.e. after gzip: the published 413 names 2097152 bytes
INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
TIME_MESSAGE = "'properties.time' is invalid: must be specified as seconds since epoch"
Failure = dict[str, Any]


def bad_request(error: str) -> web.Response:
    return json_response({"code": 400, "error": error, "status": "Bad Request"}, 400)


def parse_events(request: web.Request) -> list[Any] | None:
    """The events of a JSON array, an NDJSON body or the SDK's form field; None if unreadable."""
    recorded = request[RECORDED]
    text = recorded.body.decode("utf-8", "replace")
    if recorded.form is not None:
        text = recorded.form.get("data", "")
        if not text.lstrip().startswith(("{", "[")):
            try:
                text = base64.b64decode(text, validate=True).decode()  # the legacy encoding
            except (binascii.Error, UnicodeDecodeError):
                return None
    try:
        if request.content_type == "application/x-ndjson":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else [parsed]


def failure(index: int, event: Any, clock: Callable[[], float]) -> Failure | None:
    """Why Mixpanel's strict mode refuses `event`, in the published failed_records shape."""
    props = event.get("properties") if isinstance(event, dict) else None
    insert_id = props.get("$insert_id") if isinstance(props, dict) else None
    problem = _problem(event, props, clock)
    if problem is None:
        return None
    return {"index": index, "$insert_id": insert_id, "field": problem[0], "message": problem[1]}


def _problem(event: Any, props: Any, clock: Callable[[], float]) -> tuple[str, str] | None:
    if not isinstance(event, dict) or not isinstance(props, dict):
        return "properties", "'properties' is invalid: must be an object"
    when = props.get("time")
    seconds = float(when) if isinstance(when, int | float) and not isinstance(when, bool) else 0.0
    numeric = seconds > 0
    seconds = seconds / 1000 if seconds > 10**11 else seconds  # seconds or milliseconds
    distinct_id, insert_id = props.get("distinct_id"), props.get("$insert_id")
    checks = [
        (
            not event.get("event") or not isinstance(event["event"], str),
            "event",
            "'event' is invalid: must be a non-empty string",
        ),
        (not numeric, "properties.time", TIME_MESSAGE),
        (
            seconds > clock() + 3600,
            "properties.time",
            "'properties.time' is invalid: must not be in the future",
        ),
        (
            distinct_id in (None, "") or not isinstance(distinct_id, str | int),
            "properties.distinct_id",
            "'properties.distinct_id' is invalid: required",
        ),
        (
            not isinstance(insert_id, str) or not INSERT_ID.match(insert_id),
            "properties.$insert_id",
            "'properties.$insert_id' is invalid: at most 36 letters, digits or '-'",
        ),
    ]
    return next(((field, message) for broken, field, message in checks if broken), None)


class MixpanelFake(FakeServer):
    provider = "mixpanel"

    def __init__(
        self,
        api_secret: str = "fake-project-secret",  # noqa: S107 - the fake's own credential
        *,
        service_account: tuple[str, str] = ("rtmn-fake.sa", "fake-sa-secret"),
        project_id: str = "1234567",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_secret, self.service_account = api_secret, service_account
        self.project_id, self._clock = project_id, clock
        self._events: list[dict[str, Any]] = []
        self._dropped: list[Any] = []
        self._received_ids: list[str] = []

    def reset_state(self) -> None:
        self._events.clear()
        self._dropped.clear()
        self._received_ids.clear()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/import", self._import)]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        credentials = basic_credentials(request)
        secret_ok = credentials == (self.api_secret, "")
        account_ok = credentials == self.service_account and (
            request.query.get("project_id") == self.project_id
        )
        if secret_ok or account_ok:
            return None
        return json_response(load("mixpanel", "import.401.openapi.json"), 401)

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return load("mixpanel", "import.429.openapi.json")
        return {"code": status, "error": "Internal Server Error", "status": "Internal Server Error"}

    # -- test control -------------------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every imported event, duplicates included, in arrival order."""
        with self._lock:
            return list(self._events)

    @property
    def dropped(self) -> list[Any]:
        with self._lock:
            return list(self._dropped)

    def insert_ids(self) -> list[str]:
        """The $insert_id of every event received, valid or not, repeats included."""
        with self._lock:
            return list(self._received_ids)

    # -- handler ------------------------------------------------------------------------------

    async def _import(self, request: web.Request) -> web.Response:
        if (request.content_length or len(request[RECORDED].body)) > MAX_BYTES:
            return json_response(load("mixpanel", "import.413.openapi.json"), 413)
        events = parse_events(request)
        if events is None:
            return bad_request("unable to parse request body")
        if len(events) > MAX_EVENTS:
            return bad_request(f"too many records in request: at most {MAX_EVENTS}")
        failures = [f for i, e in enumerate(events) if (f := failure(i, e, self._clock))]
        failed_at = {f["index"] for f in failures}
        accepted = [e for i, e in enumerate(events) if i not in failed_at]
        with self._lock:
            self._received_ids += [
                e["properties"]["$insert_id"]
                for e in events
                if isinstance(e, dict)
                and isinstance(e.get("properties"), dict)
                and isinstance(e["properties"].get("$insert_id"), str)
            ]
            self._events += accepted
            self._dropped += [events[i] for i in sorted(failed_at)]
        if request.query.get("strict") != "1":
            return json_response({"error": None, "status": 1})
        if not failures:
            return json_response(
                {"code": 200, "num_records_imported": len(accepted), "status": "OK"}
            )
        body = load("mixpanel", "import.400.strict_failed.docs.json")
        body.update(failed_records=failures, num_records_imported=len(accepted))
        return json_response(body, 400)
