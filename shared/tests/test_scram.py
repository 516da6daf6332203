"""Verifiers made here are what PostgreSQL makes, so a password set is recognised next time."""

from __future__ import annotations

import asyncpg

from rtmn_shared import scram


def test_a_verifier_matches_its_password_only() -> None:
    made = scram.verifier("correct-horse")
    assert made.startswith("SCRAM-SHA-256$4096:")
    assert scram.matches(made, "correct-horse")
    assert not scram.matches(made, "correct-horsf")
    assert made != scram.verifier("correct-horse")  # salted anew each time
    assert not scram.matches(None, "correct-horse")
    assert not scram.matches("md5" + "0" * 32, "correct-horse")


async def test_the_servers_own_verifier_is_recognised(
    admin: asyncpg.Connection[asyncpg.Record],
) -> None:
    await admin.execute("DROP ROLE IF EXISTS rtmn_scram_probe")
    await admin.execute("CREATE ROLE rtmn_scram_probe")
    try:
        await admin.execute("SET password_encryption = 'scram-sha-256'")
        await admin.execute("ALTER ROLE rtmn_scram_probe PASSWORD 'set-by-the-server'")
        stored = await admin.fetchval(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'rtmn_scram_probe'"
        )
        assert scram.matches(stored, "set-by-the-server")
        assert not scram.matches(stored, "something-else")
    finally:
        await admin.execute("RESET password_encryption")
        await admin.execute("DROP ROLE rtmn_scram_probe")
