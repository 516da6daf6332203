"""`python -m rtmn_fakes` runs fakes standalone and prints where each listens."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest

from rtmn_fakes.__main__ import FAKES, build, parse_all, parser


async def test_standalone_twilio_answers_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtmn_fakes",
        "twilio",
        "--port",
        "0",
        "--account-sid",
        "AC" + "ab" * 16,
        "--auth-token",
        "tok",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        name, url = line.decode().split()
        auth = aiohttp.encode_basic_auth("AC" + "ab" * 16, "tok")
        form = {"To": "+919812345678", "From": "+14155550100", "Body": "hi"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{url}/2010-04-01/Accounts/{'AC' + 'ab' * 16}/Messages.json",
                data=form,
                headers={"Authorization": auth},
            ) as response,
        ):
            assert response.status == 201
        assert name == "twilio"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


@pytest.mark.parametrize("name", sorted(FAKES))
def test_every_fake_can_be_built_from_the_command_line(name: str) -> None:
    args = parser().parse_args([name, "--port", "0"])

    fake = build(args)

    assert fake.provider == name


def test_credentials_flags_reach_the_fake() -> None:
    fake = build(parser().parse_args(["razorpay", "--key-id", "rzp_test_cli", "--key-secret", "x"]))

    assert (fake.key_id, fake.key_secret) == ("rzp_test_cli", "x")  # type: ignore[attr-defined]


async def test_fakes_joined_by_plus_share_one_process_and_each_answers() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtmn_fakes",
        "sendgrid",
        "--port",
        "0",
        "--api-key",
        "SG.joined.key",
        "+",
        "razorpay",
        "--port",
        "0",
        "--key-id",
        "rzp_test_joined",
        "--key-secret",
        "s3cret",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [await asyncio.wait_for(process.stdout.readline(), 30) for _ in range(2)]
        urls = dict(line.decode().split() for line in lines)
        auth = aiohttp.encode_basic_auth("rzp_test_joined", "s3cret")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{urls['razorpay']}/v1/orders",
                json={"amount": 100, "currency": "INR"},
                headers={"Authorization": auth},
            ) as order,
            http.post(f"{urls['sendgrid']}/v3/mail/send", json={}) as unauthorized,
        ):
            assert (order.status, unauthorized.status) == (200, 401)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def test_arguments_split_at_plus_into_one_namespace_per_fake() -> None:
    fakes = parse_all(["s3", "--port", "0", "+", "msg91", "--authkey", "k"])

    assert [args.name for args in fakes] == ["s3", "msg91"]


async def test_keep_bounds_what_a_long_running_fake_remembers() -> None:
    fake = build(parser().parse_args(["sendgrid", "--api-key", "SG.keep.x", "--keep", "2"]))
    async with fake, aiohttp.ClientSession() as http:
        for n in range(3):
            await http.post(f"{fake.url}/v3/mail/send", data=f"request {n}")

        assert [r.body for r in fake.requests] == [b"request 1", b"request 2"]
