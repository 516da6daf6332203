"""The HTTP edge's models: what the geo API reads and returns."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from geo.domain import (
    DEFAULT_NEARBY,
    DEFAULT_RADIUS_KM,
    MAX_NEARBY,
    MAX_RADIUS_KM,
    LatLng,
)

Latitude = Field(ge=-90, le=90, allow_inf_nan=False)
Longitude = Field(ge=-180, le=180, allow_inf_nan=False)


class Point(BaseModel):
    lat: float = Latitude
    lng: float = Longitude


class GeocodeQuery(BaseModel):
    address: str = Field(min_length=1, max_length=500)


class GeocodeResult(BaseModel):
    address: str = Field(description="the address as asked")
    formatted_address: str
    place_id: str
    location: Point
    partial_match: bool = Field(description="Google matched only part of the address")
    source: str = Field(description="'cache' or 'provider'")


class DistanceQuery(BaseModel):
    from_: str = Field(alias="from", description="'lat,lng'", examples=["12.9716,77.5946"])
    to: str = Field(description="'lat,lng'", examples=["13.0827,80.2707"])

    @field_validator("from_", "to")
    @classmethod
    def _point(cls, value: str) -> str:
        LatLng.parse(value)  # ValueError becomes a 400 naming the field
        return value


class Distance(BaseModel):
    distance_km: float
    method: str = "haversine"
    earth_radius_km: float
    accuracy: str = Field(description="a sphere is within about 0.5 % of the WGS84 ellipsoid")


class MerchantLocation(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    lat: float = Latitude
    lng: float = Longitude


class MerchantOut(BaseModel):
    id: str
    name: str
    lat: float
    lng: float
    updated_at: str


class NearbyQuery(BaseModel):
    lat: float = Latitude
    lng: float = Longitude
    radius_km: float = Field(default=DEFAULT_RADIUS_KM, gt=0, le=MAX_RADIUS_KM)
    limit: int = Field(default=DEFAULT_NEARBY, ge=1, le=MAX_NEARBY)


class NearbyMerchantOut(BaseModel):
    id: str
    name: str
    lat: float
    lng: float
    distance_km: float


class NearbyResult(BaseModel):
    merchants: list[NearbyMerchantOut]
    radius_km: float
    limit: int
