"""Helpers of the cross-service checks of bad input and access (issue 10): every service run
in-process with its providers in their sandboxes, what a problem document must be, and row
counts to prove a refused request changed nothing."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from rtmn_fakes.google_maps import GoogleMapsFake
from rtmn_fakes.razorpay import RazorpayFake
from rtmn_fakes.stripe import StripeFake
from rtmn_shared.cli.token import generate_keypair
from rtmn_shared.settings import CommonSettings
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.web.problems import PROBLEM_TYPE

SERVICE_NAMES = ("payments", "otp", "notify", "media", "geo", "wallet", "analytics")


def service_module(name: str) -> Any:
    """`<name>.app`, or a clean skip while that service has no composition root yet."""
    try:
        return importlib.import_module(f"{name}.app")
    except ModuleNotFoundError as missing:
        if missing.name not in (name, f"{name}.app"):
            raise
        pytest.skip(f"{name} has no app.py yet")


# Provider credentials the fleet configures: no log line may ever carry one (test_logs.py).
RAZORPAY_KEY_ID = "rzp_test_security00001"
RAZORPAY_KEY_SECRET = "rzp-key-secret-security-7f3a9c"
RAZORPAY_WEBHOOK_SECRET = "whsec-razorpay-security-51be07"
STRIPE_KEY = "sk_test_security_4c1d8e2b9a7f6e5d"
STRIPE_WEBHOOK_SECRET = "whsec_stripe_security_93ad1f"
OTP_HASH_KEY = "otp-hash-key-security-" + "8d2f" * 8
PROVIDER_SECRETS = (
    RAZORPAY_KEY_SECRET,
    RAZORPAY_WEBHOOK_SECRET,
    STRIPE_KEY,
    STRIPE_WEBHOOK_SECRET,
    OTP_HASH_KEY,
)


async def settings_for(
    name: str, module: Any, scratch: Path, stack: AsyncExitStack
) -> CommonSettings:
    """Providers in their sandboxes, except where the sandbox refuses by design (payments'
    checkout verification, geo's cache misses answer 503): there the real clients talk to the
    contract fakes, so the fuzzer reaches the real code."""
    overrides: dict[str, Any] = {}
    if name == "payments":
        razorpay = stack.enter_context(RazorpayFake(RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET))
        stripe = await stack.enter_async_context(StripeFake(STRIPE_KEY))
        overrides = {
            "razorpay_key_id": RAZORPAY_KEY_ID,
            "razorpay_key_secret": RAZORPAY_KEY_SECRET,
            "razorpay_webhook_secret": RAZORPAY_WEBHOOK_SECRET,
            "razorpay_api_base": razorpay.url,
            "upi_payee_name": "RTMN Stores",  # live UPI has no default payee
            "stripe_secret_key": STRIPE_KEY,
            "stripe_webhook_secret": STRIPE_WEBHOOK_SECRET,
            "stripe_api_base": stripe.url,
            "gateway_timeout_seconds": 2.0,
            "reconcile_interval_seconds": 3_600,
        }
    elif name == "otp":
        overrides = otp_overrides()
    elif name == "media":
        overrides = {"media_local_dir": scratch / "media", "media_workers": 1}
    elif name == "geo":
        maps = stack.enter_context(GoogleMapsFake())  # its own thread: the SDK blocks
        overrides = {
            "google_maps_api_key": maps.api_key,
            "google_maps_base_url": maps.url,
            "geocode_misses_per_minute": 100_000,
        }
    settings: CommonSettings = module.SERVICE.settings(**overrides)
    return settings


def otp_overrides() -> dict[str, Any]:
    private, public = generate_keypair()  # its own pair: never the bearer tokens' key
    return {
        "otp_hash_key": OTP_HASH_KEY,
        "otp_signing_key": private,
        "otp_signing_public_key": public,
    }


class Fleet:
    """Starts each service the first time a test asks for it; stops them all at the end."""

    def __init__(self, stack: AsyncExitStack, scratch: Path) -> None:
        self.stack = stack
        self.scratch = scratch
        self.started: dict[str, RunningService] = {}

    async def get(self, name: str) -> RunningService:
        if name not in self.started:
            module = service_module(name)
            settings = await settings_for(name, module, self.scratch, self.stack)
            self.started[name] = await self.stack.enter_async_context(
                running(module.SERVICE, settings, relay=False, consumers=False)
            )
        return self.started[name]


async def row_counts(admin: asyncpg.Connection[asyncpg.Record], schema: str) -> dict[str, int]:
    """Rows in every table of one service's schema: what "nothing changed" compares."""
    tables = await admin.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
        schema,
    )
    counts: dict[str, int] = {}
    for row in tables:
        name = row["table_name"]
        # Identifiers cannot be parameters; these come from the catalogue, quoted.
        query = 'SELECT count(*) FROM "{}"."{}"'.format(  # noqa: S608
            schema.replace('"', '""'), name.replace('"', '""')
        )
        counts[name] = await admin.fetchval(query)
    return counts


def problem_error(status: int, content_type: str, body: bytes) -> str | None:
    """Why an error response is not an RFC 9457 problem document, or None when it is."""
    if status < 400:
        return None
    if content_type.split(";", maxsplit=1)[0].strip() != PROBLEM_TYPE:
        return f"{status} with Content-Type {content_type!r}, not {PROBLEM_TYPE}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:80]!r}"
    if not isinstance(document, dict):
        document = {}
    wrong = [
        f"no string {key!r}" for key in ("type", "title") if not isinstance(document.get(key), str)
    ]
    if document.get("status") != status:
        wrong.append(f"its status member is {document.get('status')!r}")
    return f"{status} problem: {'; '.join(wrong)} in {body[:200]!r}" if wrong else None


_SCALARS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "string": lambda s: "x" * max(1, s.get("minLength", 1)),
    "integer": lambda s: max(1, s.get("minimum", 1)),
    "number": lambda s: max(1, s.get("minimum", 1)),
    "boolean": lambda s: False,
}


def minimal(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """The smallest value a JSON schema accepts (required members only): a body that gets past
    validation, so a refusal can only come from the token or the scope."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type")
    if "enum" in schema:
        value: Any = schema["enum"][0]
    elif kind == "object":
        properties = schema.get("properties", {})
        value = {
            name: minimal(properties.get(name, {}), components)
            for name in schema.get("required", [])
        }
    elif kind == "array":
        value = [minimal(schema.get("items", {}), components)] * schema.get("minItems", 0)
    else:
        value = _SCALARS[kind](schema) if kind in _SCALARS else None
    return value
