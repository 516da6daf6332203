from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

# The local fakes live beside the tests; importlib mode does not put this folder on the path.
sys.path.insert(0, str(Path(__file__).parent))

from analytics_fakes import Ga4Fake, MixpanelFake

from rtmn_shared.testing.infra import Suite


@pytest.fixture
async def mixpanel() -> AsyncIterator[MixpanelFake]:
    async with MixpanelFake() as fake:
        yield fake


@pytest.fixture
async def ga4() -> AsyncIterator[Ga4Fake]:
    async with Ga4Fake() as fake:
        yield fake


@pytest.fixture
async def channel(suite: Suite) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(suite.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    yield channel
    await connection.close()
