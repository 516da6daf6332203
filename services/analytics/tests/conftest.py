from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest

from rtmn_fakes.ga4 import Ga4Fake
from rtmn_fakes.mixpanel import MixpanelFake
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
