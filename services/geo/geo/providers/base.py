"""What the service needs from a geocoding provider, and the ways a lookup can fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from geo.domain import Place


@dataclass(frozen=True)
class Query:
    """By address (biased and restricted to India), or by a place id we stored earlier."""

    address: str | None = None
    place_id: str | None = None


class GeocodeFailure(Exception):
    """A lookup that produced no place."""


class Transient(GeocodeFailure):
    """Worth another try soon: rate limited, provider error, timeout, broken reply."""


class Rejected(GeocodeFailure):
    """The provider refuses us (bad key, billing, daily quota): retrying cannot help."""

    def __init__(self, status: str, message: str | None = None) -> None:
        super().__init__(f"{status}: {message}" if message else status)
        self.status = status


class InvalidQuery(GeocodeFailure):
    """The provider says the request itself is wrong."""


class NotConfigured(GeocodeFailure):
    """No provider credentials: the sandbox cannot look anything up."""


class Geocoder(Protocol):
    mode: str  # "live" or "sandbox", as /readyz reports it

    async def geocode(self, query: Query) -> Place | None:
        """One attempt; None for ZERO_RESULTS. Raises a GeocodeFailure otherwise."""
        ...
