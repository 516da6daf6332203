"""A tiny Google Maps Geocoding fake for the geo tests (rtmn_fakes has no google_maps fake yet).

Speaks the legacy JSON web-service envelope the `googlemaps` SDK reads: HTTP 200 with a
`status` field (OK, ZERO_RESULTS, OVER_QUERY_LIMIT, REQUEST_DENIED, INVALID_REQUEST, ...),
checks the API key, and knows only the places a test registers.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rtmn_fakes.base import RECORDED, FakeServer, json_response

PATH = "/maps/api/geocode/json"
API_KEY = "AIzaFakeKeyForTheGeoTests0000000000000"


@dataclass(frozen=True)
class FakePlace:
    place_id: str
    formatted_address: str
    lat: float
    lng: float
    partial_match: bool = False


def _match_key(address: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", address.casefold()).split())


def envelope(status: str, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"results": [], "status": status}
    if message is not None:
        body["error_message"] = message
    return body


class FakeGoogleMaps(FakeServer):
    provider = "google_maps"

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self._places: dict[str, FakePlace] = {}
        self._by_id: dict[str, FakePlace] = {}
        self._places_lock = threading.Lock()

    def add_place(self, address: str, place: FakePlace) -> FakePlace:
        with self._places_lock:
            self._places[_match_key(address)] = place
            self._by_id[place.place_id] = place
        return place

    def answer_next(self, status: str, n: int = 1, message: str | None = None) -> None:
        """The next n geocode calls answer HTTP 200 with this API status."""
        self.fail_next(n, status=200, body=envelope(status, message), path=PATH)

    def geocode_requests(self) -> list[dict[str, str]]:
        return [r.query for r in self.requests_to(PATH)]

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self._geocode)]

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if request.query.get("key") != self.api_key:
            return json_response(envelope("REQUEST_DENIED", "The provided API key is invalid. "))
        return None

    async def _geocode(self, request: web.Request) -> web.StreamResponse:
        recorded = request[RECORDED]
        address, place_id = recorded.query.get("address"), recorded.query.get("place_id")
        if not address and not place_id:
            return json_response(
                envelope(
                    "INVALID_REQUEST",
                    "Invalid request. Missing the 'address', 'components', 'latlng' or "
                    "'place_id' parameter.",
                )
            )
        with self._places_lock:
            if place_id:
                place = self._by_id.get(place_id)
                if place is None:
                    return json_response(envelope("NOT_FOUND"))
            else:
                place = self._places.get(_match_key(address or ""))
        if place is None:
            return json_response(envelope("ZERO_RESULTS"))
        result: dict[str, Any] = {
            "address_components": [],
            "formatted_address": place.formatted_address,
            "geometry": {
                "location": {"lat": place.lat, "lng": place.lng},
                "location_type": "ROOFTOP",
                "viewport": {
                    "northeast": {"lat": place.lat + 0.001, "lng": place.lng + 0.001},
                    "southwest": {"lat": place.lat - 0.001, "lng": place.lng - 0.001},
                },
            },
            "place_id": place.place_id,
            "types": ["street_address"],
        }
        if place.partial_match and not place_id:
            result["partial_match"] = True
        return json_response({"results": [result], "status": "OK"})
