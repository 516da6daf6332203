"""Credentials kept only in a service's sealed store: start-up reads them, the command manages
them, and the encryption key is rotated while the service keeps sending. The service is otp, as
`python -m otp` processes, talking to the Twilio contract fake (which checks the auth token)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import IO, Any

import aiohttp
import pytest

from otp.app import SERVICE
from rtmn_fakes.twilio import TwilioFake
from rtmn_shared.cli.secrets import main as secrets_command
from rtmn_shared.cli.token import generate_keypair
from rtmn_shared.db import Pool
from rtmn_shared.keyring import KeyRing, generate_key
from rtmn_shared.secrets import SecretStore
from rtmn_shared.service import load_service_settings
from rtmn_shared.settings import SettingsError, secret_settings
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.plugin import Migrator
from rtmn_shared.testing.processes import free_port
from rtmn_shared.testing.waiting import wait_for

V1, V2 = f"v1:{generate_key()}", f"v2:{generate_key()}"
TOKEN = "twilio-token-" + "t" * 24
HASH_KEY = "hash-key-from-the-store-" + "h" * 24
STORED = {"TWILIO_AUTH_TOKEN": TOKEN, "OTP_HASH_KEY": HASH_KEY}


def test_otp_declares_its_keys_and_both_sms_credentials() -> None:
    assert set(secret_settings(SERVICE.settings)) == {
        "OTP_HASH_KEY",
        "OTP_SIGNING_KEY",
        "TWILIO_AUTH_TOKEN",
        "MSG91_AUTH_KEY",
        "OTP_MSG91_REPORT_KEY",  # the only proof an unsigned MSG91 delivery report carries
    }


# -- the service's environment and processes ---------------------------------------------------


@pytest.fixture(scope="module")
async def twilio() -> AsyncIterator[TwilioFake]:
    async with TwilioFake(auth_token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def otp_store(service_pool: Migrator) -> AsyncIterator[Pool]:
    """otp's migrated schema with an empty secrets table, emptied again afterwards."""
    pool = await service_pool("otp", SERVICE.migrations)
    await pool.execute("DELETE FROM secrets")
    yield pool
    await pool.execute("DELETE FROM secrets")


@pytest.fixture
def otp_env(suite: Suite, twilio: TwilioFake) -> dict[str, str]:
    """Everything otp needs except what the test keeps in the store."""
    env = {k: v for k, v in os.environ.items() if k not in STORED and k != "SECRETS_KEYS"}
    return {
        **env,
        **suite.environ(),
        "OTP_SIGNING_KEY": generate_keypair()[0],
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_PHONE_NUMBER": "+15005550006",
        "TWILIO_BASE_URL": twilio.url,
        # send_code forwards through a proxy at 172.16.0.9, so each send is a client of its own.
        "TRUSTED_PROXIES": "127.0.0.0/8,172.16.0.9/32",
    }


async def otp_command(
    env: Mapping[str, str], *args: str, stdin: str | None = None
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "otp",
        *args,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def seal_all(pool: Pool, ring: str = V1) -> None:
    store = SecretStore(pool, KeyRing.parse(ring))
    for name, value in STORED.items():
        await store.put(name, value)


async def put_all(env: Mapping[str, str]) -> None:
    """Through the command, each value on stdin as an operator would pipe it."""
    for name, value in STORED.items():
        code, out = await otp_command(env, "secrets", "put", name, stdin=value + "\n")
        assert code == 0, out
        assert out.startswith(f"{name} sealed under key v1"), out
        assert value not in out


@asynccontextmanager
async def otp_api(env: Mapping[str, str]) -> AsyncIterator[OtpProcess]:
    """`python -m otp api` until it answers /readyz; SIGTERM and its whole output afterwards."""
    port = free_port()
    with tempfile.TemporaryFile() as output:  # a file, so a chatty process never blocks on a pipe
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "otp",
            "api",
            env={**env, "HTTP_PORT": str(port)},
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            running = OtpProcess(process, http, output)
            try:
                await wait_for(running.ready, timeout=60, interval=0.2, message="otp api ready")
                yield running
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
                running.output = running.printed()


class OtpProcess:
    def __init__(
        self, process: asyncio.subprocess.Process, http: aiohttp.ClientSession, out: IO[bytes]
    ) -> None:
        self.process, self.http, self.out, self.output = process, http, out, ""

    def printed(self) -> str:
        self.out.seek(0)
        return self.out.read().decode()

    async def ready(self) -> dict[str, Any] | None:
        if self.process.returncode is not None:
            raise AssertionError(f"otp api exited: {self.printed()}")
        try:
            async with self.http.get("/readyz") as response:
                return await response.json() if response.status == 200 else None  # type: ignore[no-any-return]
        except aiohttp.ClientError:
            return None

    async def send_code(self) -> int:
        """One code to a fresh number; 202 only once Twilio's fake accepted our credentials."""
        digits = "".join(str(byte % 10) for byte in os.urandom(8))
        forwarded = f"10.9.{os.urandom(1)[0]}.{os.urandom(1)[0]}, 172.16.0.9"
        async with self.http.post(
            "/api/otp/send",
            json={"phone": f"+9198{digits}"},
            headers={"X-Forwarded-For": forwarded},
        ) as response:
            return response.status


def use_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """This process's environment as `env` has it, for in-process start-ups."""
    for name in [*STORED, "SECRETS_KEYS"]:
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


# -- start-up ----------------------------------------------------------------------------------


async def test_a_service_started_with_its_credentials_only_in_the_store_authenticates(
    otp_store: Pool, otp_env: dict[str, str], twilio: TwilioFake
) -> None:
    env = {**otp_env, "SECRETS_KEYS": V1}
    await put_all(env)
    for name, value in STORED.items():
        sealed = await otp_store.fetchval("SELECT ciphertext FROM secrets WHERE name = $1", name)
        assert value.encode() not in sealed
        assert value[:12].encode() not in sealed

    async with otp_api(env) as otp:
        assert (await otp.ready() or {}).get("providers") == {"twilio": "live"}
        assert await otp.send_code() == 202
    assert twilio.requests_to("/Messages.json")[-1].status == 201
    assert "credentials from the secret store: OTP_HASH_KEY, TWILIO_AUTH_TOKEN" in otp.output
    assert TOKEN not in otp.output
    assert HASH_KEY not in otp.output


async def test_the_environment_wins_over_the_store(
    otp_store: Pool, otp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await seal_all(otp_store)
    use_env(monkeypatch, {**otp_env, "SECRETS_KEYS": V1, "OTP_HASH_KEY": "e" * 40})
    settings, from_store = await load_service_settings(SERVICE)
    assert from_store == ["TWILIO_AUTH_TOKEN"]
    assert settings.otp_hash_key.get_secret_value() == "e" * 40
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == TOKEN


async def test_a_stored_secret_that_cannot_be_opened_stops_start_up_naming_only_it(
    otp_store: Pool, otp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await seal_all(otp_store)
    await otp_store.execute(
        "UPDATE secrets SET ciphertext = set_byte(ciphertext, 30, get_byte(ciphertext, 30) # 1)"
        " WHERE name = 'TWILIO_AUTH_TOKEN'"
    )
    # v1, which sealed both, has left the ring: the process stops, one line per secret.
    code, out = await otp_command({**otp_env, "SECRETS_KEYS": V2}, "api")
    assert code != 0
    assert out.splitlines() == [
        "configuration error: OTP_HASH_KEY is stored but cannot be opened: sealed with key 'v1',"
        " which SECRETS_KEYS no longer holds (it holds v2)",
        "configuration error: TWILIO_AUTH_TOKEN is stored but cannot be opened: sealed with key"
        " 'v1', which SECRETS_KEYS no longer holds (it holds v2)",
    ]
    use_env(monkeypatch, otp_env)
    monkeypatch.setenv("SECRETS_KEYS", V1)
    with pytest.raises(
        SettingsError,
        match=r"^configuration error: TWILIO_AUTH_TOKEN is stored"
        r" but cannot be opened: a secret sealed with 'v1' failed its check$",
    ):
        await load_service_settings(SERVICE)


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def command_env(otp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, {**otp_env, "SECRETS_KEYS": V1})


@pytest.mark.parametrize(
    ("argv", "stdin", "refusal"),
    [
        (["put", "DB_PASSWORD"], "x", "DB_PASSWORD is not a secret setting of otp"),
        (["put", "SECRETS_KEYS"], "x", "SECRETS_KEYS is not a secret setting of otp"),
        (["put", "TWILIO_ACCOUNT_SID"], "x", "TWILIO_ACCOUNT_SID is not a secret setting"),
        (["put", "TWILIO_AUTH_TOKEN"], "\n", "an empty TWILIO_AUTH_TOKEN is refused"),
        (["put", "TWILIO_AUTH_TOKEN", "the-value"], "", "unrecognized arguments"),
        (["rotate", "--batch", "0"], "", "must be at least 1"),
    ],
)
def test_the_command_refuses_what_is_not_a_credential_and_values_on_the_command_line(
    command_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    refusal: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as refused:
        secrets_command(SERVICE, argv)
    assert refused.value.code != 0
    assert refusal in f"{refused.value.code}{capsys.readouterr().err}"


def test_new_key_prints_a_key_the_ring_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    secrets_command(SERVICE, ["new-key"])
    assert KeyRing.parse(f"v9:{capsys.readouterr().out.strip()}").current == "v9"


def test_the_command_needs_the_key_ring(command_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETS_KEYS")
    with pytest.raises(SystemExit, match="SECRETS_KEYS is not set"):
        secrets_command(SERVICE, ["list"])


# -- rotation without downtime -----------------------------------------------------------------


async def test_the_key_is_rotated_while_the_service_keeps_sending_then_the_old_key_retires(
    otp_store: Pool, otp_env: dict[str, str], twilio: TwilioFake
) -> None:
    old_ring, both, new_ring = (
        {**otp_env, "SECRETS_KEYS": ring} for ring in (V1, f"{V2},{V1}", V2)
    )
    await seal_all(otp_store)
    async with otp_api(old_ring) as otp:
        answers: list[int] = []
        rotated = asyncio.Event()

        async def keep_sending() -> None:
            while not rotated.is_set() or len(answers) < 3:
                answers.append(await otp.send_code())
                # A steady trickle of users until the rotation is done, not a flood.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rotated.wait(), 0.05)

        sending = asyncio.ensure_future(keep_sending())
        await wait_for(lambda: len(answers) >= 2, message="codes sent before the rotation")
        # The new key goes first in the ring; a process started now opens old and new rows.
        async with otp_api(both) as during:
            code, out = await otp_command(both, "secrets", "rotate", "--batch", "1")
            assert code == 0, out
            assert await during.send_code() == 202
        rotated.set()
        await sending
    assert re.findall(r"re-sealed (\d+) ", out) == ["1", "1"]
    assert out.splitlines()[-1] == "2 secret(s) re-sealed under v2; rows per key: v2=2"
    assert set(answers) == {202}, answers

    rows = await otp_store.fetch("SELECT name, key_version, ciphertext FROM secrets")
    assert {row["name"]: row["key_version"] for row in rows} == dict.fromkeys(STORED, "v2")
    assert not any(v.encode() in row["ciphertext"] for row in rows for v in STORED.values())
    code, listing = await otp_command(new_ring, "secrets", "list")
    assert code == 0, listing
    assert [line.split()[:2] for line in listing.splitlines()[:-1]] == [
        ["OTP_HASH_KEY", "v2"],
        ["TWILIO_AUTH_TOKEN", "v2"],
    ]
    assert listing.splitlines()[-1] == "rows per key: v2=2"
    assert TOKEN not in listing

    # v1 has left the ring: a process restarted with the new key alone starts and sends.
    sent = len(twilio.requests_to("/Messages.json"))
    async with otp_api(new_ring) as restarted:
        assert await restarted.send_code() == 202
    assert len(twilio.requests_to("/Messages.json")) == sent + 1
    assert twilio.requests_to("/Messages.json")[-1].status == 201
