"""End to end through nginx on :8080, as clients and providers reach the suite."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"


async def test_the_demo_tells_the_whole_payment_story(running_suite: Any) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        running_suite.demo(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    story = result.stdout
    for beat in (
        "registered (user.registered published)",
        "device registered",
        "placed (order.placed published)",
        "₹2,499.00, the order's amount",
        "signed payment.captured webhook accepted",
        "REZ coins credited",
        "order confirmation sent",
        "pushed via",
        "partial refund of ₹999.00",
        "coins reversed",
        "the story is complete",
    ):
        assert beat in story, f"missing {beat!r} in:\n{story}"


async def test_a_razorpay_signature_still_verifies_after_the_gateway(running_suite: Any) -> None:
    secret = running_suite.env["RAZORPAY_WEBHOOK_SECRET"].encode()
    # Spacing and key order a re-serialising proxy would change: the signature covers the bytes.
    body = (
        b'{"entity": "event", "event": "payment.failed",  "contains": ["payment"],'
        b' "payload": {"payment": {"entity": {"id": "pay_gw_1", "order_id": "order_nope",'
        b' "amount": 100, "currency": "INR", "status": "failed"}}},'
        b' "created_at": %d}' % int(time.time())
    )
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as http:
        headers = {
            "X-Razorpay-Signature": signature,
            "Content-Type": "application/json",
            "X-Razorpay-Event-Id": f"evt_{uuid.uuid4().hex}",
        }
        async with http.post(
            f"{GATEWAY}/api/webhooks/razorpay", data=body, headers=headers
        ) as good:
            assert good.status == 200, await good.text()
        tampered = body.replace(b'"amount": 100', b'"amount": 101')
        async with http.post(
            f"{GATEWAY}/api/webhooks/razorpay", data=tampered, headers=headers
        ) as bad:
            assert bad.status == 400


async def test_the_gateway_refuses_a_6_mb_upload(running_suite: Any) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "image",
        io.BytesIO(b"\xff\xd8" + bytes(6 * 1024 * 1024)),
        filename="big.jpg",
        content_type="image/jpeg",
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{GATEWAY}/api/upload/image",
            data=form,
            headers=running_suite.suite.bearer("e2e-uploader"),
        ) as response,
    ):
        assert response.status == 413
        assert response.content_type == "application/problem+json"
        problem = orjson.loads(await response.read())
        assert problem["status"] == 413


async def test_the_gateway_limits_otp_requests_per_address(running_suite: Any) -> None:
    async with aiohttp.ClientSession() as http:

        async def send(n: int) -> tuple[int, dict[str, str], bytes]:
            phone = f"+9198765{n:05d}"
            async with http.post(f"{GATEWAY}/api/otp/send", json={"phone": phone}) as response:
                return response.status, dict(response.headers), await response.read()

        answers = await asyncio.gather(*(send(n) for n in range(20)))
    # The OTP service limits too (per phone and per address); find the gateway's own answers.
    from_gateway = [a for a in answers if a[0] == 429 and b"from this address" in a[2]]
    assert from_gateway, [(a[0], a[2][:80]) for a in answers]
    _, headers, body = from_gateway[0]
    assert headers["Retry-After"]
    assert b"too many requests from this address" in body
