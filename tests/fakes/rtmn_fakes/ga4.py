"""GA4 Measurement Protocol: `POST /mp/collect` and `POST /debug/mp/collect`.

Like Google, `/mp/collect` answers 204 to anything; what Google would drop or truncate is
recorded in `fake.violations` instead, so tests can assert there were none. The debug
endpoint answers the same findings as `validationMessages`, in the published shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rtmn_fakes.base import RECORDED, FakeServer, json_response
from rtmn_fakes.recording import RecordedRequest

MAX_EVENTS = 25
MAX_BYTES = 130_000  # "smaller than 130kB"; the decimal reading is the stricter one
MAX_PARAMS = 25
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED_NAMES = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_query",
        "ad_reward",
        "adunit_exposure",
        "app_background",
        "app_clear_data",
        "app_exception",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_convert",
        "app_store_subscription_renew",
        "app_update",
        "app_upgrade",
        "dynamic_link_app_open",
        "dynamic_link_app_update",
        "dynamic_link_first_open",
        "error",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "os_update",
        "session_start",
        "session_start_with_rollout",
        "user_engagement",
    }
)
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")


@dataclass(frozen=True)
class ValidationMessage:
    field_path: str
    description: str
    validation_code: str

    def as_json(self) -> dict[str, str]:
        return {
            "fieldPath": self.field_path,
            "description": self.description,
            "validationCode": self.validation_code,
        }


@dataclass(frozen=True)
class Violation:
    request: RecordedRequest
    message: ValidationMessage


def validate(body: Any, query: dict[str, str], size: int) -> list[ValidationMessage]:
    found: list[ValidationMessage] = []

    def add(path: str, description: str, code: str) -> None:
        found.append(ValidationMessage(path, description, code))

    if size >= MAX_BYTES:
        add("", f"Request body of {size} bytes is not smaller than 130kB.", "VALUE_OUT_OF_BOUNDS")
    if "api_secret" not in query:
        add("api_secret", "Query parameter api_secret is required.", "VALUE_REQUIRED")
    if "measurement_id" not in query and "firebase_app_id" not in query:
        add("measurement_id", "measurement_id or firebase_app_id is required.", "VALUE_REQUIRED")
    if not isinstance(body, dict):
        add("", "Request body must be a JSON object.", "VALUE_INVALID")
        return found
    if not any(body.get(k) for k in ("client_id", "app_instance_id", "user_id")):
        add("client_id", "client_id, app_instance_id or user_id is required.", "VALUE_REQUIRED")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        add("events", "At least one event is required.", "VALUE_REQUIRED")
        return found
    if len(events) > MAX_EVENTS:
        text = f"Found {len(events)} events; at most {MAX_EVENTS} are allowed."
        add("events", text, "EXCEEDED_MAX_ENTITIES")
    for index, event in enumerate(events):
        found += _event_messages(index, event)
    return found


def _event_messages(index: int, event: Any) -> list[ValidationMessage]:
    name = event.get("name") if isinstance(event, dict) else None
    params = event.get("params", {}) if isinstance(event, dict) else None
    at, where = f"events[{index}].params", f"Event at index: [{index}]"
    if not isinstance(name, str) or not NAME.match(name):
        # The published example's wording, for a name starting with '_'.
        text = f"{where} has invalid name [{name}]. Names must start with an alphabetic character."
        return [ValidationMessage("events", text, "NAME_INVALID")]
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        return [
            ValidationMessage("events", f"{where} has reserved name [{name}].", "NAME_RESERVED")
        ]
    if not isinstance(params, dict):
        return [
            ValidationMessage(at, f"{where} has params that are not an object.", "VALUE_INVALID")
        ]
    found = []
    if len(params) > MAX_PARAMS:
        text = f"{where} has more than {MAX_PARAMS} params."
        found.append(ValidationMessage(at, text, "EXCEEDED_MAX_ENTITIES"))
    for key, value in params.items():
        if not NAME.match(key) or key.startswith(RESERVED_PREFIXES):
            text = f"{where} has invalid param name [{key}]."
            found.append(ValidationMessage(at, text, "NAME_INVALID"))
        elif isinstance(value, str) and len(value) > 100:
            text = f"{where} has param [{key}] longer than 100 characters."
            found.append(ValidationMessage(f"{at}.{key}", text, "VALUE_OUT_OF_BOUNDS"))
    return found


class Ga4Fake(FakeServer):
    provider = "ga4"

    def __init__(
        self,
        measurement_id: str = "G-FAKE000001",
        api_secret: str = "fake-ga4-api-secret",  # noqa: S107 - the fake's own credential
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.measurement_id, self.api_secret = measurement_id, api_secret
        self._violations: list[Violation] = []
        self._events: list[dict[str, Any]] = []

    def reset_state(self) -> None:
        self._violations.clear()
        self._events.clear()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/mp/collect", self._collect), web.post("/debug/mp/collect", self._debug)]

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Events of the requests that broke no rule, each with the sender's ids merged in."""
        with self._lock:
            return list(self._events)

    def _findings(self, request: web.Request) -> tuple[Any, list[ValidationMessage]]:
        recorded = request[RECORDED]
        try:
            body = json.loads(recorded.body)
        except ValueError:
            body = None
        query = dict(request.query)
        found = validate(body, query, request.content_length or len(recorded.body))
        # Google drops hits for a wrong secret or stream without a word; the fake says so.
        if query.get("api_secret", self.api_secret) != self.api_secret:
            found.append(
                ValidationMessage("api_secret", "api_secret does not match.", "VALUE_INVALID")
            )
        if query.get("measurement_id", self.measurement_id) != self.measurement_id:
            found.append(
                ValidationMessage("measurement_id", "Unknown measurement_id.", "VALUE_INVALID")
            )
        return body, found

    async def _collect(self, request: web.Request) -> web.Response:
        body, found = self._findings(request)
        with self._lock:
            self._violations += [Violation(request[RECORDED], message) for message in found]
            if not found:
                ids = {k: body[k] for k in ("client_id", "app_instance_id", "user_id") if k in body}
                self._events += [{**ids, **event} for event in body["events"]]
        return web.Response(status=204)

    async def _debug(self, request: web.Request) -> web.Response:
        _, found = self._findings(request)
        return json_response({"validationMessages": [m.as_json() for m in found]})
