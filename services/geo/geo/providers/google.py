"""Google Maps Geocoding through the official SDK, one attempt per call, off the event loop.

The SDK is blocking (requests) and retries on its own: HTTP 5xx until `retry_timeout`, and
OVER_QUERY_LIMIT with blocking sleeps. We turn the latter off and keep the former short, so the
retry policy, its deadline and the circuit breaker live in one place (geo.geocoding), where
waiting does not hold a thread.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from functools import partial
from typing import Any

import googlemaps
import googlemaps.exceptions as gm

from geo.domain import LatLng, Place
from geo.providers.base import InvalidQuery, Query, Rejected, Transient

log = logging.getLogger(__name__)

# Statuses after which another attempt may succeed.
RETRYABLE = frozenset({"OVER_QUERY_LIMIT", "UNKNOWN_ERROR"})


class GoogleGeocoder:
    mode = "live"

    def __init__(
        self,
        *,
        api_key: str,
        executor: Executor,
        base_url: str | None = None,
        timeout: float = 3.0,
        retry_timeout: float = 1.0,
        queries_per_second: int = 50,
    ) -> None:
        options: dict[str, Any] = {"base_url": base_url.rstrip("/")} if base_url else {}
        self._client = googlemaps.Client(
            key=api_key,
            timeout=timeout,
            retry_timeout=retry_timeout,
            retry_over_query_limit=False,
            queries_per_second=queries_per_second,
            queries_per_minute=queries_per_second * 60,
            **options,
        )
        self._executor = executor

    def close(self) -> None:
        self._client.session.close()

    async def geocode(self, query: Query) -> Place | None:
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, partial(self._call, query))
        if not results:
            return None
        return _place(results[0])

    def _call(self, query: Query) -> list[dict[str, Any]]:
        try:
            if query.place_id is not None:
                found = self._client.geocode(place_id=query.place_id)
            else:
                found = self._client.geocode(
                    query.address, region="in", components={"country": "IN"}
                )
        except gm.ApiError as error:  # includes _OverQueryLimit
            raise _classify(error) from None
        except gm.Timeout:
            raise Transient("geocoding timed out") from None
        except gm.HTTPError as error:
            if error.status_code == 429:
                raise Transient("HTTP 429 from the provider") from None
            raise Rejected(f"HTTP_{error.status_code}") from None
        except gm.TransportError as error:
            raise Transient(f"transport error: {type(error.base_exception).__name__}") from None
        except ValueError:
            # requests' JSONDecodeError: the SDK does not wrap a reply that is not JSON.
            raise Transient("malformed reply from the provider") from None
        if not isinstance(found, list):
            raise Transient("malformed reply from the provider")
        return found


def _classify(error: gm.ApiError) -> Exception:
    status = str(error.status)
    message = error.message
    if status in ("INVALID_REQUEST", "NOT_FOUND"):
        # NOT_FOUND answers a place id lookup whose id has gone stale.
        return InvalidQuery(message or "the provider rejected the request as invalid")
    if status == "OVER_QUERY_LIMIT" and message and "daily" in message.lower():
        # Google reports an exhausted daily quota under OVER_QUERY_LIMIT too; waiting
        # seconds will not refill it.
        return Rejected("OVER_DAILY_LIMIT", message)
    if status in RETRYABLE:
        return Transient(status)
    log.error("geocoding provider refused the request: %s", status)
    return Rejected(status, message)


def _place(result: dict[str, Any]) -> Place:
    try:
        location = result["geometry"]["location"]
        return Place(
            place_id=str(result["place_id"]),
            formatted_address=str(result["formatted_address"]),
            location=LatLng(float(location["lat"]), float(location["lng"])),
            partial_match=bool(result.get("partial_match", False)),
        )
    except (KeyError, TypeError, ValueError):
        raise Transient("malformed result from the provider") from None
