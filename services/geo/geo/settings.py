"""The geo service's configuration: Google Maps credentials and the geocoding policy."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from geo.cache import MAX_COORDINATE_TTL_S
from rtmn_shared.settings import CommonSettings


class Settings(CommonSettings):
    # The seed's name. Unset -> the sandbox geocoder, which answers only from the cache.
    google_maps_api_key: SecretStr | None = None
    google_maps_base_url: str | None = Field(default=None, description="for tests: a local fake")
    geocode_timeout_s: float = Field(default=3.0, gt=0, le=30)
    # The SDK's own retry budget (HTTP 5xx, with blocking sleeps in a worker thread): short.
    geocode_sdk_retry_timeout_s: float = Field(default=1.0, ge=0.1, le=10)
    geocode_deadline_s: float = Field(default=5.0, gt=0, le=30)
    geocode_retry_first_delay_s: float = Field(default=0.2, gt=0, le=5)
    geocode_workers: int = Field(default=4, ge=1, le=32)
    google_maps_qps: int = Field(default=50, ge=1, le=1000)
    geocode_coordinate_ttl_s: int = Field(
        default=MAX_COORDINATE_TTL_S, ge=1, le=MAX_COORDINATE_TTL_S
    )
    geocode_negative_ttl_s: int = Field(default=600, ge=1, le=86_400)
    geocode_breaker_failures: int = Field(default=5, ge=1)
    geocode_breaker_reset_s: float = Field(default=30.0, gt=0)
    # Provider lookups (cache misses) a caller may cause per minute.
    geocode_misses_per_minute: int = Field(default=30, ge=1)

    @field_validator("google_maps_api_key")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None
