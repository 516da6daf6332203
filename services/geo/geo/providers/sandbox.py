"""The geocoder used when GOOGLE_MAPS_API_KEY is not set: it never invents coordinates."""

from __future__ import annotations

import logging

from geo.domain import Place
from geo.providers.base import NotConfigured, Query

log = logging.getLogger(__name__)


class SandboxGeocoder:
    mode = "sandbox"

    def __init__(self) -> None:
        log.warning("GOOGLE_MAPS_API_KEY is not set: geocoding answers only from the cache")

    async def geocode(self, query: Query) -> Place | None:
        raise NotConfigured("geocoding provider not configured")
