"""A Razorpay payment entity is read into our signal once (`providers/razorpay/wire.py`), the
same whether a webhook carries it or the REST API answers with it."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from payments.domain import Captured
from payments.providers.razorpay.webhooks import parse
from payments.providers.razorpay.wire import Payments, settled
from payments.webhooks import PaymentCommand
from rtmn_fakes.payloads import load_text


@pytest.mark.parametrize(
    "sample",
    [
        "webhook.payment.authorized.upi.json",
        "webhook.payment.captured.upi.json",
        "webhook.order.paid.upi.json",
        "webhook.payment.failed.upi.json",
    ],
)
def test_a_published_payment_is_the_same_signal_from_its_webhook_and_from_the_api(
    sample: str,
) -> None:
    body = load_text("razorpay", sample).encode()
    entity = orjson.loads(body)["payload"]["payment"]["entity"]

    _, created, command = parse(body)
    answered = settled(Payments.model_validate({"items": [entity]}).items)

    assert isinstance(command, PaymentCommand)
    assert command.gateway_order_id == entity["order_id"]
    # Only a webhook knows when the capture happened: its event's created_at.
    expected = replace(answered, paid_at=created) if isinstance(answered, Captured) else answered
    assert command.signal == expected
    assert (
        type(command.signal).__name__
        == {
            "authorized": "Authorized",
            "captured": "Captured",
            "failed": "Failed",
        }[entity["status"]]
    )
