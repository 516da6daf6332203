"""The shared Google Maps fake, plus the one thing it lacks: geocoding by `place_id`.

Google's Geocoding API accepts `place_id=` instead of an address; the geo service refreshes
expired coordinates that way. This subclass remembers every result the fake served and answers
place id lookups from them (NOT_FOUND for ids it never served), as Google would for a stale id.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aiohttp import web

from rtmn_fakes.base import json_response
from rtmn_fakes.google_maps import GoogleMapsFake

PATH = "/maps/api/geocode/json"
API_KEY = "AIzaFakeKeyForTheGeoTests0000000000000"


class GeoMapsFake(GoogleMapsFake):
    def __init__(self) -> None:
        super().__init__(API_KEY)
        self._served: dict[str, dict[str, Any]] = {}
        self._served_lock = threading.Lock()

    def calls(self) -> list[dict[str, str]]:
        """The query of every geocode request, in order."""
        return [r.query for r in self.requests_to(PATH)]

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self._geocode_or_place_id)]

    async def _geocode_or_place_id(self, request: web.Request) -> web.Response:
        place_id = request.query.get("place_id")
        if place_id:
            with self._served_lock:
                result = self._served.get(place_id)
            if result is None:
                return json_response({"results": [], "status": "NOT_FOUND"})
            return json_response({"results": [result], "status": "OK"})
        response = await self._geocode(request)
        assert isinstance(response.body, bytes)
        body = json.loads(response.body)
        with self._served_lock:
            for result in body.get("results", []):
                served = {k: v for k, v in result.items() if k != "partial_match"}
                self._served[result["place_id"]] = served
        return response
