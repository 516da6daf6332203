"""Geocoding with a cache in front: one provider call per address, however many ask at once.

Order of work for an address: Redis (coordinates, or a recent "no match") -> one in-process
flight per address -> a Redis lock per address across replicas -> the stored place id (refresh
by id) or the address itself -> the provider, retried within a deadline behind a breaker.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from geo import store
from geo.breaker import CircuitBreaker, CircuitOpen
from geo.cache import GeocodeCache, NoMatch
from geo.domain import Place, normalise_address
from geo.providers.base import (
    Geocoder,
    InvalidQuery,
    NotConfigured,
    Query,
    Transient,
)
from rtmn_shared.db import Pool

log = logging.getLogger(__name__)


class NoPlace(Exception):
    """The provider knows no place in India for this address (ZERO_RESULTS)."""


class Unavailable(Exception):
    """The provider could not answer in time, or the breaker keeps us from asking."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    deadline_s: float = 5.0
    first_delay_s: float = 0.2
    max_delay_s: float = 1.0


@dataclass(frozen=True)
class Answer:
    place: Place
    from_cache: bool


class Geocoding:
    def __init__(
        self,
        *,
        geocoder: Geocoder,
        cache: GeocodeCache,
        pool: Pool,
        breaker: CircuitBreaker,
        retry: RetryPolicy = RetryPolicy(),
        poll_interval_s: float = 0.02,
    ) -> None:
        self._geocoder = geocoder
        self._cache = cache
        self._pool = pool
        self._breaker = breaker
        self._retry = retry
        self._poll_interval_s = poll_interval_s
        self._flights: dict[str, asyncio.Task[Answer]] = {}

    @staticmethod
    def key(address: str) -> str:
        key = normalise_address(address)
        if not key:
            raise InvalidQuery("the address has no letters or digits")
        return key

    async def cached(self, key: str) -> Answer | None:
        """The cached answer, None on a miss; NoPlace if the address recently matched nothing."""
        found = await self._cache.get(key)
        if isinstance(found, NoMatch):
            raise NoPlace
        return None if found is None else Answer(found, from_cache=True)

    async def resolve(self, key: str) -> Answer:
        """Looks the address up by its key; concurrent callers for the same key share one lookup.

        Google is asked with the key itself, never one caller's spelling of it: the answer is
        cached for every spelling, so the first caller must not choose what the others get."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fill(key))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # Shielded: a caller that goes away does not cancel the others' lookup.
        return await asyncio.shield(flight)

    def _landed(self, key: str, flight: asyncio.Task[Answer]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here so an unawaited failure is not reported twice

    async def _fill(self, key: str) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry.deadline_s
        while True:
            token = await self._cache.lock(key)
            if token is not None:
                try:
                    # Another replica may have answered between our miss and our lock.
                    return await self.cached(key) or await self._lookup(key, deadline)
                finally:
                    await self._cache.unlock(key, token)
            while await self._cache.locked(key):
                if loop.time() > deadline:
                    raise Unavailable("another replica's lookup did not finish in time", 1)
                await asyncio.sleep(self._poll_interval_s)
            answer = await self.cached(key)
            if answer is not None:
                return answer
            # The other lookup failed without an answer to share; try ourselves.

    async def _lookup(self, key: str, deadline: float) -> Answer:
        stored = await store.find_place(self._pool, key)
        place = None
        if stored is not None:
            # Google lets us keep the place id, not the coordinates: refresh through the id.
            try:
                place = await self._call(Query(place_id=stored.place_id), deadline)
            except InvalidQuery:
                log.info("stored place id no longer resolves; asking by address")
            if place is not None:
                place = Place(
                    place.place_id,
                    place.formatted_address,
                    place.location,
                    stored.partial_match,
                )
        if place is None:
            place = await self._call(Query(address=key), deadline)
        if place is None:
            await self._cache.put_no_match(key)
            raise NoPlace
        await store.save_place(self._pool, key, key, place)
        await self._cache.put(key, place)
        return Answer(place, from_cache=False)

    async def _call(self, query: Query, deadline: float) -> Place | None:
        loop = asyncio.get_running_loop()
        delay = self._retry.first_delay_s
        while True:
            try:
                self._breaker.before_call()
            except CircuitOpen as open_:
                raise Unavailable("geocoding provider is failing", open_.retry_after) from None
            try:
                place = await self._geocoder.geocode(query)
            except Transient as error:
                self._breaker.record_failure()
                log.warning("geocoding attempt failed: %s", error)
                if loop.time() + delay > deadline:
                    raise Unavailable(f"geocoding provider unavailable: {error}", 2) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry.max_delay_s)
                continue
            except (InvalidQuery, NotConfigured):
                self._breaker.record_success()  # the provider (or sandbox) did answer
                raise
            except BaseException:
                # Rejected, and also cancellation: a half-open probe must never hang.
                self._breaker.record_failure()
                raise
            self._breaker.record_success()
            return place
