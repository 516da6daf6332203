"""The payments service running in-process against the Razorpay and Stripe contract fakes."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from payments_testkit import RZP_KEY_ID, RZP_KEY_SECRET, STRIPE_KEY, Api, settings_for

from payments.app import SERVICE
from payments.settings import Settings
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake
from rtmn_shared.db import Pool
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService, running


@pytest.fixture(scope="session")
async def razorpay() -> AsyncIterator[RazorpayFake]:
    async with RazorpayFake(key_id=RZP_KEY_ID, key_secret=RZP_KEY_SECRET) as fake:
        yield fake


@pytest.fixture(scope="session")
async def stripe() -> AsyncIterator[StripeFake]:
    async with StripeFake(api_key=STRIPE_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
async def service(
    suite: Suite, razorpay: RazorpayFake, stripe: StripeFake
) -> AsyncIterator[RunningService]:
    async with running(SERVICE, settings_for(razorpay, stripe)) as svc:
        yield svc


@pytest.fixture(scope="session")
async def pool(service: RunningService) -> Pool:
    return service.pool


@pytest.fixture
def client(service: RunningService) -> TestClient:  # type: ignore[type-arg]
    return service.client


@pytest.fixture
def user() -> str:
    return f"user_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(
    client: TestClient,  # type: ignore[type-arg]
    suite: Suite,
    pool: Pool,
    razorpay: RazorpayFake,
    stripe: StripeFake,
) -> Api:
    return Api(client, suite, pool, razorpay, stripe)


@pytest.fixture
def api_for(
    suite: Suite, razorpay: RazorpayFake, stripe: StripeFake
) -> Callable[[RunningService], Api]:
    """The same calls on a service the test started itself (another database, other settings)."""
    return lambda service: Api(service.client, suite, service.pool, razorpay, stripe)


@pytest.fixture
def make_settings(razorpay: RazorpayFake, stripe: StripeFake) -> Callable[..., Settings]:
    """The tests' settings, from the environment as it is when called, with `changes`."""
    return lambda **changes: settings_for(razorpay, stripe, **changes)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack
