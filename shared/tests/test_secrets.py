"""Provider credentials sealed at rest under versioned keys; rotation on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from prometheus_client import REGISTRY

from rtmn_shared.db import Pool
from rtmn_shared.keyring import (
    KeyRing,
    KeyRingError,
    TamperedSecret,
    UnknownKeyVersion,
    generate_key,
    version_of,
)
from rtmn_shared.migrations import SHARED
from rtmn_shared.secrets import SECRETS_TABLE_SQL, SecretStore, table_sql
from rtmn_shared.testing.infra import Suite

DEMO_OWNER = "rtmn_demo_owner"  # the demo schema's migration role (conftest.py)

V1, V2 = generate_key(), generate_key()
OLD = KeyRing.parse(f"v1:{V1}")
NEW = KeyRing.parse(f"v2:{V2},v1:{V1}")
ONLY_NEW = KeyRing.parse(f"v2:{V2}")


def test_a_secret_round_trips_and_names_its_key_version() -> None:
    sealed = NEW.encrypt("rzp_live_secret", name="razorpay_key_secret")
    assert version_of(sealed) == "v2"
    assert b"rzp_live_secret" not in sealed
    assert NEW.decrypt(sealed, name="razorpay_key_secret") == "rzp_live_secret"
    assert NEW.encrypt("x") != NEW.encrypt("x"), "a fresh nonce per seal"


@pytest.mark.parametrize("position", [0, 1, 3, 10, 20, -1])
def test_any_altered_byte_is_detected(position: int) -> None:
    sealed = bytearray(NEW.encrypt("sk_live_abc", name="stripe"))
    sealed[position] ^= 0x01
    with pytest.raises((TamperedSecret, UnknownKeyVersion)):
        NEW.decrypt(bytes(sealed), name="stripe")


def test_a_ciphertext_moved_to_another_name_does_not_open() -> None:
    sealed = NEW.encrypt("twilio-token", name="twilio_auth_token")
    with pytest.raises(TamperedSecret):
        NEW.decrypt(sealed, name="sendgrid_api_key")


def test_rotate_reseals_under_the_current_key_and_old_keys_still_open() -> None:
    old = OLD.encrypt("msg91-key", name="msg91")
    assert NEW.decrypt(old, name="msg91") == "msg91-key"  # v1 still in the ring
    moved = NEW.rotate(old, name="msg91")
    assert version_of(moved) == "v2"
    assert ONLY_NEW.decrypt(moved, name="msg91") == "msg91-key"
    assert NEW.rotate(moved, name="msg91") == moved  # already current: left alone


def test_a_removed_key_fails_clearly() -> None:
    old = OLD.encrypt("ga4-secret", name="ga4")
    with pytest.raises(UnknownKeyVersion, match=r"'v1'.*no longer holds.*v2"):
        ONLY_NEW.decrypt(old, name="ga4")


@pytest.mark.parametrize(
    "spec",
    ["", "v1", f"v1:{V1},v1:{V2}", "v1:bm90LWEta2V5", "bad version:" + V1, f"v1:{V1[:-4]}!!!!"],
)
def test_a_malformed_key_ring_is_refused_without_echoing_keys(spec: str) -> None:
    with pytest.raises(KeyRingError) as refused:
        KeyRing.parse(spec)
    assert V1 not in str(refused.value)
    assert V2 not in str(refused.value)


@pytest.fixture
async def store_table(demo_pool: Pool, suite: Suite) -> AsyncIterator[str]:
    table = f"secrets_{uuid.uuid4().hex[:8]}"
    owner = await asyncpg.connect(
        suite.database_url, user=DEMO_OWNER, server_settings={"search_path": "demo"}
    )
    try:
        await owner.execute(table_sql(table))  # a migration's work: the runtime role may not
        yield table
        await owner.execute(f"DROP TABLE {table}")
    finally:
        await owner.close()


def test_the_migration_sql_is_the_documented_table() -> None:
    for column in ("name TEXT PRIMARY KEY", "ciphertext BYTEA", "key_version TEXT", "updated_at"):
        assert column in " ".join(SECRETS_TABLE_SQL.split())


async def test_the_store_keeps_only_ciphertext_in_the_table(
    demo_pool: Pool, store_table: str
) -> None:
    store = SecretStore(demo_pool, NEW, table=store_table)
    await store.put("razorpay_key_secret", "rzp-plain-value")
    assert await store.get("razorpay_key_secret") == "rzp-plain-value"
    assert await store.get("missing") is None
    raw = await demo_pool.fetchval(f"SELECT ciphertext FROM {store_table}")  # noqa: S608
    assert b"rzp-plain-value" not in raw
    await demo_pool.execute(
        f"UPDATE {store_table} SET ciphertext = set_byte(ciphertext, 30,"  # noqa: S608
        " get_byte(ciphertext, 30) # 1)"
    )
    with pytest.raises(TamperedSecret):
        await store.get("razorpay_key_secret")


async def test_rotation_moves_every_row_in_batches_while_readers_keep_reading(
    demo_pool: Pool, store_table: str
) -> None:
    names = [f"provider_{i:03d}" for i in range(57)]
    before = SecretStore(demo_pool, OLD, table=store_table)
    for name in names:
        await before.put(name, f"value of {name}")
    after = SecretStore(demo_pool, NEW, table=store_table)
    assert await after.versions() == {"v1": 57}

    # Mid-rotation: some rows moved, some not; a reader with the new ring reads them all.
    assert await after.rotate_batch(batch_size=20) == 20
    assert await after.versions() == {"v1": 37, "v2": 20}
    assert [await after.get(n) for n in names] == [f"value of {n}" for n in names]

    # Two rotators at once split the rest between them (SKIP LOCKED), readers all along.
    async def read_all() -> list[str | None]:
        return [await after.get(n) for n in names]

    moved_a, moved_b, seen = await asyncio.gather(
        after.rotate(batch_size=7), after.rotate(batch_size=7), read_all()
    )
    assert moved_a + moved_b == 37
    assert seen == [f"value of {n}" for n in names]
    assert await after.versions() == {"v2": 57}
    assert await after.rotate() == 0

    # v1 can now leave the ring: everything opens under v2 alone.
    final = SecretStore(demo_pool, ONLY_NEW, table=store_table)
    assert [await final.get(n) for n in names] == [f"value of {n}" for n in names]


async def test_rotation_stops_clearly_on_a_row_whose_key_left_the_ring(
    demo_pool: Pool, store_table: str
) -> None:
    await SecretStore(demo_pool, OLD, table=store_table).put("stranded", "x")
    third = KeyRing.parse(f"v3:{generate_key()},v2:{V2}")
    with pytest.raises(UnknownKeyVersion, match="'v1'"):
        await SecretStore(demo_pool, third, table=store_table).rotate()
    assert await SecretStore(demo_pool, OLD, table=store_table).get("stranded") == "x"


def test_a_table_name_is_never_sql() -> None:
    with pytest.raises(ValueError, match="table name"):
        table_sql("secrets; DROP TABLE outbox")


async def test_the_ages_of_stored_credentials_and_of_the_key_in_use_are_exported(
    demo_pool: Pool, store_table: str
) -> None:
    await SecretStore(demo_pool, OLD, table=store_table).put("msg91_auth_key", "old-sealed")
    store = SecretStore(demo_pool, NEW, table=store_table)
    await store.put("razorpay_key_secret", "first")
    await store.put("stripe_webhook_secret", "second")
    await store.export_ages("demo")
    stored = {e.name: e.updated_at.timestamp() for e in await store.entries()}
    for name, when in stored.items():
        sample = REGISTRY.get_sample_value(
            "rtmn_secret_updated_timestamp_seconds", {"service": "demo", "name": name}
        )
        assert sample == when, name
    # v2 seals since the first put under it; the v1 row does not count.
    assert REGISTRY.get_sample_value(
        "rtmn_secret_key_in_use_since_timestamp_seconds", {"service": "demo", "version": "v2"}
    ) == min(stored["razorpay_key_secret"], stored["stripe_webhook_secret"])


def test_the_shared_migration_is_the_documented_table() -> None:
    assert (SHARED / "0003_secrets.sql").read_text() == table_sql()
