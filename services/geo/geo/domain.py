"""Pure geography: address normalisation, great-circle distance, and the limits of a search."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

# The IUGG mean Earth radius. A sphere differs from the WGS84 ellipsoid by at most about 0.5 %
# (worst along meridians near the poles and the equator), which is the accuracy of every
# distance this service reports; good enough for "how far is the shop", not for surveying.
EARTH_RADIUS_KM = 6371.0088

MAX_RADIUS_KM = 50.0
MAX_NEARBY = 100
DEFAULT_RADIUS_KM = 5.0
DEFAULT_NEARBY = 20

# Dropped outright ("M.G. Road" -> "mg road"); all other punctuation separates words.
_JOINING = frozenset(".'’`")


@dataclass(frozen=True)
class LatLng:
    lat: float
    lng: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError("latitude must be between -90 and 90")
        if not (math.isfinite(self.lng) and -180.0 <= self.lng <= 180.0):
            raise ValueError("longitude must be between -180 and 180")

    @classmethod
    def parse(cls, text: str) -> LatLng:
        """`"12.97,77.59"` -> LatLng; ValueError says what is wrong."""
        parts = text.split(",")
        if len(parts) != 2:
            raise ValueError("expected 'lat,lng'")
        try:
            lat, lng = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError("expected two decimal numbers as 'lat,lng'") from None
        return cls(lat, lng)


@dataclass(frozen=True)
class Place:
    """One geocoding answer: what Google returned for an address."""

    place_id: str
    formatted_address: str
    location: LatLng
    partial_match: bool


def normalise_address(address: str) -> str:
    """The cache key of an address: case, spacing and punctuation do not make a new place."""
    text = unicodedata.normalize("NFKC", address).casefold()
    out = []
    for char in text:
        if unicodedata.category(char).startswith("P"):
            out.append("" if char in _JOINING else " ")
        else:
            out.append(char)
    return " ".join("".join(out).split())


def haversine_km(a: LatLng, b: LatLng) -> float:
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    d_phi = phi2 - phi1
    d_lambda = math.radians(b.lng - a.lng)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    # min() guards asin against rounding just above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
