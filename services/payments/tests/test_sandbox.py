"""Without credentials the gateways are sandboxes: they say so, record, and never confirm."""

from __future__ import annotations

from contextlib import AsyncExitStack

from payments_testkit import Api

from payments.app import build_app, build_gateways
from rtmn_shared.testing.plugin import ClientFactory


async def test_sandbox_gateways_take_orders_but_never_confirm_them(
    api: Api, http: ClientFactory, user: str
) -> None:
    settings = api.settings(
        razorpay_key_id=None,
        razorpay_key_secret=None,
        stripe_secret_key=None,
        razorpay_api_base=None,
        stripe_api_base=None,
    )
    async with AsyncExitStack() as stack:
        client = await http(await build_app(settings, stack))

        ready = await (await client.get("/readyz")).json()
        created = await client.post(
            "/api/payments/create",
            json={"order_id": f"o1_{user}", "order_number": "R1", "merchant_id": "m1",
                  "amount": 1_000, "user_id": user},
            headers=api.suite.bearer("commerce", "service"),
        )  # fmt: skip
        verify = await client.post(
            "/api/payments/verify",
            json={"razorpay_order_id": "x", "razorpay_payment_id": "y", "razorpay_signature": "z"},
            headers=api.suite.bearer(user),
        )

        assert ready["providers"] == {"razorpay": "sandbox", "upi": "sandbox", "stripe": "sandbox"}
        assert created.status == 201
        body = await created.json()
        assert body["gateway_order_id"].startswith("sandbox_order_")
        assert verify.status == 503
        gateways = await build_gateways(settings, stack)
        assert await gateways.of("razorpay").status(body["gateway_order_id"]) is None
