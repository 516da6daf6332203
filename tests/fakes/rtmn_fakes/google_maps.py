"""Google Geocoding API (`GET /maps/api/geocode/json`), as `googlemaps.Client(base_url=...)`
sees it. Like the real one it answers HTTP 200 and puts the outcome in `status`.

Unprogrammed addresses geocode OK to a result shaped like the published example, at a
location derived from the address (stable across runs, inside India's bounding box).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import Counter, deque
from typing import Any, Literal

from aiohttp import web

from rtmn_fakes.base import FakeServer, json_response
from rtmn_fakes.payloads import load

GeocodeStatus = Literal[
    "OK",
    "ZERO_RESULTS",
    "OVER_QUERY_LIMIT",
    "REQUEST_DENIED",
    "INVALID_REQUEST",
    "OVER_DAILY_LIMIT",
    "UNKNOWN_ERROR",
]
NO_KEY = "You must use an API key to authenticate each request to Google Maps Platform APIs."
ERRORS: dict[str, str] = {
    "OVER_DAILY_LIMIT": "You have exceeded your daily request quota for this API.",
    "UNKNOWN_ERROR": "An unknown error occurred. Please try again.",
}
Answer = dict[str, Any]


def normalise(address: str) -> str:
    """How loosely the fake matches a programmed address: Google, too, reads "MG Road, Bengaluru"
    and "mg road bengaluru" as one address."""
    return " ".join(re.sub(r"[^\w\s]", " ", address.lower()).split())


def status_body(status: GeocodeStatus) -> Answer:
    if status == "ZERO_RESULTS":
        body: Answer = load("google_maps", "geocode.zero_results.json")
    elif status == "OVER_QUERY_LIMIT":
        body = {**load("google_maps", "over_query_limit.sdk_test.json"), "results": []}
    elif status == "REQUEST_DENIED":
        body = load("google_maps", "legacy_webservice.request_denied.invalid_key.elevation.json")
    elif status == "INVALID_REQUEST":
        body = load("google_maps", "geocode.invalid_request.json")
    else:
        body = {"error_message": ERRORS[status], "results": [], "status": status}
    return body


def default_result(address: str, country: str = "IN") -> dict[str, Any]:
    """The published OK result, moved to a place derived from `address`."""
    [result] = load("google_maps", "geocode.ok.1600_amphitheatre.json")["results"]
    digest = hashlib.sha256(normalise(address).encode()).digest()
    lat = 8.0 + int.from_bytes(digest[:4]) / 2**32 * 27.0  # India spans ~8-35 N, 68-97 E
    lng = 68.0 + int.from_bytes(digest[4:8]) / 2**32 * 29.0
    result["geometry"].pop("bounds", None)
    result["geometry"]["location"] = {"lat": round(lat, 7), "lng": round(lng, 7)}
    result["geometry"]["viewport"] = {
        "northeast": {"lat": round(lat + 0.0013, 7), "lng": round(lng + 0.0013, 7)},
        "southwest": {"lat": round(lat - 0.0013, 7), "lng": round(lng - 0.0013, 7)},
    }
    result["formatted_address"] = address
    result["place_id"] = "ChIJ" + digest[8:20].hex()
    result["address_components"] = [
        {"long_name": address, "short_name": address, "types": ["premise"]},
        {"long_name": country, "short_name": country, "types": ["country", "political"]},
    ]
    return dict(result)


class GoogleMapsFake(FakeServer):
    provider = "google_maps"

    def __init__(
        self,
        api_key: str = "AIzaFakeKey000000000000000000000000000",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        if not api_key.startswith("AIza"):
            raise ValueError("googlemaps.Client refuses keys not starting with 'AIza'")
        self.api_key = api_key
        self._sticky: dict[str, Answer] = {}
        self._queued: dict[str, deque[Answer]] = {}
        self._counts: Counter[str] = Counter()

    def reset_state(self) -> None:
        self._sticky.clear()
        self._queued.clear()
        self._counts.clear()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/maps/api/geocode/json", self._geocode)]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        key = request.query.get("key")
        if key == self.api_key:
            return None
        if not key:
            return json_response(
                {"error_message": NO_KEY, "results": [], "status": "REQUEST_DENIED"}
            )
        return json_response(status_body("REQUEST_DENIED"))

    def fault_body(self, status: int) -> Any:
        return "<html><body>Server Error</body></html>"  # Google's 5xx pages are HTML

    # -- test control -------------------------------------------------------------------------

    def set_geocode(
        self,
        address: str,
        status: GeocodeStatus = "OK",
        result: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Program the answer for `address` (matched case- and space-insensitively): for good,
        or for the next `times` requests only, after which the earlier answer comes back."""
        if status == "OK":
            results = result if isinstance(result, list) else [result or default_result(address)]
            answer: Answer = {"results": results, "status": "OK"}
        else:
            answer = status_body(status)
        key = normalise(address)
        with self._lock:
            if times is None:
                self._sticky[key] = answer
            else:
                self._queued.setdefault(key, deque()).extend(
                    copy.deepcopy(answer) for _ in range(times)
                )

    def geocode_count(self, address: str) -> int:
        with self._lock:
            return self._counts[normalise(address)]

    # -- handler ------------------------------------------------------------------------------

    async def _geocode(self, request: web.Request) -> web.Response:
        address = request.query.get("address", "")
        components = request.query.get("components", "")
        if not address and not components:
            return json_response(status_body("INVALID_REQUEST"))
        key = normalise(address or f"components:{components}")
        country = _country(components) or request.query.get("region", "in").upper()
        with self._lock:
            self._counts[key] += 1
            queued = self._queued.get(key)
            if queued:
                return json_response(queued.popleft())
            answer = self._sticky.get(key)
        if answer is None:
            answer = {"results": [default_result(address or components, country)], "status": "OK"}
        return json_response(answer)


def _country(components: str) -> str | None:
    for part in components.split("|"):
        name, _, value = part.partition(":")
        if name == "country" and value:
            return value.upper()
    return None
