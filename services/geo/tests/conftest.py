from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from geo.app import SERVICE
from geo.settings import Settings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running

sys.path.insert(0, str(Path(__file__).parent))

from geo_maps_fake import API_KEY, GeoMapsFake

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@pytest.fixture(scope="session")
def maps_server() -> Iterator[GeoMapsFake]:
    # In its own thread: the SDK blocks, and the fake must keep answering meanwhile.
    with GeoMapsFake() as fake:
        yield fake


@pytest.fixture
def maps(maps_server: GeoMapsFake) -> GeoMapsFake:
    maps_server.reset()
    return maps_server


def geo_settings(maps: GeoMapsFake | None, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "geocode_deadline_s": 1.0,
        "geocode_retry_first_delay_s": 0.02,
        "geocode_sdk_retry_timeout_s": 0.2,
        "geocode_timeout_s": 2.0,
        "geocode_misses_per_minute": 1000,
    }
    if maps is not None:
        options |= {"google_maps_api_key": API_KEY, "google_maps_base_url": maps.url}
    return Settings(**(options | overrides))


GeoRunner = Callable[..., AbstractAsyncContextManager[RunningService]]


@pytest.fixture
def geo_service(suite: Suite) -> GeoRunner:
    """`async with geo_service(maps, **settings) as svc`: the whole service, fresh state."""

    def start(maps: GeoMapsFake | None, **overrides: Any) -> Any:
        return running(SERVICE, geo_settings(maps, **overrides), relay=False, consumers=False)

    return start


@pytest.fixture
def user(suite: Suite) -> dict[str, str]:
    return suite.bearer(f"u-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def geo(geo_service: GeoRunner, maps: GeoMapsFake) -> AsyncIterator[RunningService]:
    async with geo_service(maps) as svc:
        yield svc
