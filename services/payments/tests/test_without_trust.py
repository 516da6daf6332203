"""On a stock Debian PostgreSQL, which trusts no login over TCP: `rtmn-db init` makes its own
administrator over the local socket, migrations run as the schema's owner and a payment as the
runtime role, each logging in with its own generated password (issue 22, item 7)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import PIPE

import asyncpg
import pytest
from payments_testkit import Api

from payments.app import SERVICE
from payments.settings import Settings
from rtmn_shared.pgadmin import admin_url
from rtmn_shared.testing.cluster import PrivateCluster
from rtmn_shared.testing.running import RunningService, running
from rtmn_shared.testing.waiting import wait_for

RTMN_DB = Path(sys.executable).parent / "rtmn-db"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster.create(f"rtmn_scram_{uuid.uuid4().hex[:6]}")
    try:
        yield cluster
    finally:
        cluster.drop()


def passwords_in(passfile: Path, port: int) -> dict[str, str]:
    lines = [line.split(":") for line in passfile.read_text().splitlines()]
    return {role: password for _, p, _, role, password in lines if p == str(port)}


async def test_a_stock_debian_postgres_takes_provisioning_migrations_and_a_payment(
    cluster: PrivateCluster,
    api_for: Callable[[RunningService], Api],
    make_settings: Callable[[], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = [line.split() for line in cluster.hba.read_text().splitlines() if line[:1].isalpha()]
    assert {rule[-1] for rule in rules} == {"peer", "scram-sha-256"}  # no trust anywhere
    admin_tcp = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with pytest.raises(asyncpg.InvalidPasswordError):  # what `make run` met before
        await asyncpg.connect(admin_tcp, password="")
    passfile = tmp_path / "pgpass"
    env = {**os.environ, "DATABASE_URL": cluster.url("rtmn"), "PGPASSFILE": str(passfile)}

    verifiers = []
    for _ in range(2):  # the second run finds the administrator and every password in place
        init = await asyncio.create_subprocess_exec(
            RTMN_DB, "init", env=env, stdout=PIPE, stderr=PIPE
        )
        _, errors = await asyncio.wait_for(init.communicate(), timeout=120)
        assert init.returncode == 0, errors.decode()
        admin = await asyncpg.connect(admin_url("127.0.0.1", cluster.port), passfile=passfile)
        try:
            verifiers.append(await admin.fetch("SELECT rolname, rolpassword FROM pg_authid"))
        finally:
            await admin.close()
    assert verifiers[0] == verifiers[1]  # and so rewrote no password

    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    passwords = passwords_in(passfile, cluster.port)
    assert {"rtmn_admin", "rtmn_payments", "rtmn_payments_owner"} <= passwords.keys()
    assert len(set(passwords.values())) == len(passwords)  # one password per role
    with pytest.raises(asyncpg.InvalidPasswordError):  # the password is what lets a role in
        await asyncpg.connect(cluster.url("rtmn"), user="rtmn_payments", password="guess")

    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("DATABASE_URL", cluster.url("rtmn"))
    caplog.set_level(logging.INFO)
    async with running(SERVICE, make_settings(), consumers=False) as service:
        api = api_for(service)
        created, _ = await api.captured(f"user_{uuid.uuid4().hex[:8]}")
        [event] = await api.events(created["payment_id"], "payment.success")
        assert event["payment_id"] == created["payment_id"]
        await wait_for(  # published by the relay, logged in as the runtime role
            lambda: service.pool.fetchval(
                "SELECT sent_at IS NOT NULL FROM outbox WHERE subject = $1",
                created["payment_id"],
            ),
            message="payment.success published",
        )
        assert await service.pool.fetchval("SELECT current_user") == "rtmn_payments"
        owner = await service.pool.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'payments'"
        )
        assert owner == "rtmn_payments_owner"
    # The migration (as the owner) made the days ahead; the relay's upkeep, which may not,
    # left them to it without an error.
    assert any("created inbox_p" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if "not kept" in r.getMessage()]
