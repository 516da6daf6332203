"""What an operator sees when start-up cannot proceed: one clear line, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import asyncpg
import pytest

from rtmn_shared.events.consumer import ConsumerRunner
from rtmn_shared.migrations import Migration, MigrationError, migrate
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.waiting import wait_for

CHECK_SETTINGS = (
    "from rtmn_shared.settings import CommonSettings, load_settings; load_settings(CommonSettings)"
)


def start_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHECK_SETTINGS],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_variable_is_named_in_one_line() -> None:
    result = start_with({"PATH": "/usr/bin"})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "configuration error: JWT_PUBLIC_KEY or JWT_JWKS_URL is required but neither is set"
    )


def test_a_malformed_variable_is_named_with_what_is_wrong(suite: Suite) -> None:
    result = start_with(
        {"JWT_PUBLIC_KEY": suite.public_key, "AMQP_URL": "nonsense", "DB_POOL_SIZE": "many"}
    )
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert sorted(line.split(" ")[2] for line in lines) == ["AMQP_URL", "DB_POOL_SIZE"]


async def test_an_applied_migration_that_was_edited_is_refused(
    suite: Suite, demo_pool: object
) -> None:
    conn = await asyncpg.connect(
        suite.database_url, user="rtmn_demo_owner"
    )  # migrations run as the owner
    try:
        original = [Migration("0001_t.sql", "CREATE TABLE edited_t (id int);")]
        await migrate(conn, "demo", original)
        assert await migrate(conn, "demo", original) == []  # applying again changes nothing
        edited = [Migration("0001_t.sql", "CREATE TABLE edited_t (id bigint);")]
        with pytest.raises(MigrationError, match=r"0001_t\.sql was edited after it was applied"):
            await migrate(conn, "demo", edited)
    finally:
        await conn.close()


async def test_two_replicas_migrating_at_once_apply_each_file_once(
    suite: Suite, demo_pool: object
) -> None:
    files = [Migration(f"000{n}_race.sql", f"CREATE TABLE race_{n} (id int);") for n in (1, 2)]

    async def replica() -> list[str]:
        conn = await asyncpg.connect(
            suite.database_url, user="rtmn_demo_owner"
        )  # migrations run as the owner
        try:
            return await migrate(conn, "demo", files)
        finally:
            await conn.close()

    first, second = await asyncio.gather(replica(), replica())
    assert sorted(first + second) == ["0001_race.sql", "0002_race.sql"]


async def test_a_broker_down_at_start_gives_a_clear_warning_and_no_traceback(
    caplog: pytest.LogCaptureFixture, demo_pool: object
) -> None:
    caplog.set_level(logging.WARNING)
    runner = ConsumerRunner(
        service="down", pool=None, amqp_url="amqp://guest:secret@127.0.0.1:1/", handlers=[]
    )
    task = asyncio.ensure_future(runner.run())
    try:
        record = await wait_for(
            lambda: next((r for r in caplog.records if "broker unreachable" in r.message), None),
            message="the warning",
        )
    finally:
        task.cancel()
    assert "amqp://guest:***@127.0.0.1:1/" in record.message
    assert "secret" not in record.message
    assert record.exc_info is None


# Only a token key is required; its URL is not fetched by the settings.
JWKS = {"PATH": "/usr/bin", "JWT_JWKS_URL": "file:///nonexistent/jwks.json"}


def test_a_misspelt_name_of_ours_stops_start_up_with_the_name_it_was_meant_to_be() -> None:
    result = start_with({**JWKS, "RAZORPAY_KEY_SECERT": "rzp-secret"})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "configuration error: RAZORPAY_KEY_SECERT is set but no RTMN service reads it: "
        "did you mean RAZORPAY_KEY_SECRET?"
    )
    assert "rzp-secret" not in result.stderr


def test_each_unknown_name_of_ours_has_its_line() -> None:
    result = start_with({**JWKS, "stripe_webhok_secret": "x", "CDN_DISTRIBUTION_ZZ": "y"})
    assert result.stderr.strip().splitlines() == [
        "configuration error: CDN_DISTRIBUTION_ZZ is set but no RTMN service reads it: "
        "see .env.example for the names read",
        "configuration error: STRIPE_WEBHOK_SECRET is set but no RTMN service reads it: "
        "did you mean STRIPE_WEBHOOK_SECRET?",
    ]


def test_names_that_are_not_ours_or_empty_are_never_looked_at() -> None:
    others = {
        "HOME": "/root",
        "PGPASSFILE": "/tmp/pgpass",
        "OTEL_SERVICE_NAME": "x",
        "HTTP_PROXY": "http://proxy:3128",
        "AWS_PROFILE": "prod",  # the AWS SDK's
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/media",
        "GOOGLE_CLOUD_PROJECT": "rez",
        # Kubernetes' links to the Services beside this one
        "OTP_SERVICE_HOST": "10.0.0.2",
        "OTP_SERVICE_PORT_HTTP": "8002",
        "PAYMENTS_PORT": "tcp://10.0.0.1:8001",
        "PAYMENTS_PORT_8001_TCP_ADDR": "10.0.0.1",
        "REDIS_PORT_6379_TCP": "tcp://10.0.0.3:6379",
        "RAZORPAY_KEY_SECERT": "",  # empty counts as unset, as for every name
        "TWILIO_REGION": "au1",  # read by the Twilio SDK itself
    }
    result = start_with({**JWKS, **others})
    assert (result.returncode, result.stderr) == (0, "")
