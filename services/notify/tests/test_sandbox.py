"""Without provider credentials notify runs on sandboxes: it records, says so, and sends nothing."""

from __future__ import annotations

import logging

import pytest
from notify_testkit import Publish, add_devices, payment, status_is, unique

from notify.app import SERVICE
from notify.settings import Settings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import running
from rtmn_shared.testing.waiting import wait_for


async def test_sandbox_providers_show_in_readyz_and_record_what_they_would_send(
    suite: Suite, publish: Publish, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings()  # no provider credentials; the rest from the suite's environment
    caplog.set_level(logging.INFO, logger="notify.providers.sandbox")
    async with running(SERVICE, settings, retry_delays_ms=(100,)) as svc:
        ready = await (await svc.client.get("/readyz")).json()
        assert ready["providers"] == {"sendgrid": "sandbox", "fcm": "sandbox"}

        user_id = unique("user")
        await add_devices(svc.pool, user_id, unique("tok"))
        await publish(payment(user_id))
        await wait_for(
            lambda: status_is(svc.pool, user_id, "payment-success", "sent"), message="push"
        )

        row = await svc.pool.fetchrow(
            "SELECT provider, provider_message_id FROM deliveries WHERE user_id = $1 "
            "AND template = 'payment-success'",
            user_id,
        )
        assert row is not None
        assert row["provider"] == "sandbox"
        assert row["provider_message_id"].startswith("sandbox-")
        assert any("sandbox push: not sent" in r.getMessage() for r in caplog.records)
