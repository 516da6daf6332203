"""Run fakes standalone, for local demos and load tests:

    python -m rtmn_fakes razorpay --port 8101 --key-id rzp_test_x --key-secret s3cret
    python -m rtmn_fakes razorpay --port 8101 ... + sendgrid --port 8102 --api-key SG.x

Fakes joined by `+` share one process and one event loop: on a machine that also runs the load
and the suite, that costs a quarter less CPU than a process each (bench/load.py). It prints
`<name> <url>` for each fake once all listen, and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from rtmn_fakes.base import FakeServer


@dataclass(frozen=True)
class Option:
    flag: str
    keyword: str
    help: str


class Spec:
    def __init__(self, cls: str, *options: Option) -> None:
        self.cls = cls  # in the module rtmn_fakes.<name>
        self.options = options


JOIN = "+"  # between the fakes that share one process
FAKES = {
    "razorpay": Spec(
        "RazorpayFake",
        Option("--key-id", "key_id", "API key id (Basic auth user)"),
        Option("--key-secret", "key_secret", "API key secret (Basic auth password)"),
    ),
    "stripe": Spec("StripeFake", Option("--api-key", "api_key", "secret key sk_test_...")),
    "twilio": Spec(
        "TwilioFake",
        Option("--account-sid", "account_sid", "Account SID AC..."),
        Option("--auth-token", "auth_token", "Auth token"),
    ),
    "msg91": Spec("Msg91Fake", Option("--authkey", "authkey", "authkey header value")),
    "sendgrid": Spec("SendGridFake", Option("--api-key", "api_key", "API key SG....")),
    "fcm": Spec(
        "FcmFake",
        Option("--project-id", "project_id", "Firebase project id"),
        Option("--access-token", "access_token", "OAuth bearer token accepted"),
    ),
    "google_maps": Spec("GoogleMapsFake", Option("--api-key", "api_key", "key AIza...")),
    "mixpanel": Spec(
        "MixpanelFake",
        Option("--api-secret", "api_secret", "project secret (Basic auth user)"),
        Option("--project-id", "project_id", "project id for service-account auth"),
    ),
    "ga4": Spec(
        "Ga4Fake",
        Option("--measurement-id", "measurement_id", "measurement id G-..."),
        Option("--api-secret", "api_secret", "Measurement Protocol API secret"),
    ),
    "s3": Spec("S3Fake"),
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m rtmn_fakes", description=__doc__.splitlines()[0])
    names = root.add_subparsers(dest="name", required=True, metavar="FAKE")
    for name, spec in FAKES.items():
        sub = names.add_parser(name, help=f"run the {name} fake")
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=0, help="0 picks a free port")
        sub.add_argument(
            "--keep", type=int, help="keep only the last KEEP requests (a long run); default: all"
        )
        for option in spec.options:
            sub.add_argument(option.flag, dest=option.keyword, help=option.help)
    return root


def build(args: argparse.Namespace) -> FakeServer:
    spec = FAKES[args.name]
    cls = getattr(importlib.import_module(f"rtmn_fakes.{args.name}"), spec.cls)
    given = {o.keyword: getattr(args, o.keyword) for o in spec.options}
    fake: FakeServer = cls(host=args.host, port=args.port, **{k: v for k, v in given.items() if v})
    if args.keep is not None:
        fake.keep_only(args.keep)
    return fake


def parse_all(argv: Sequence[str]) -> list[argparse.Namespace]:
    """One namespace per fake of `argv`, the fakes joined by `+`."""
    chunks: list[list[str]] = [[]]
    for arg in argv:
        if arg == JOIN:
            chunks.append([])
        else:
            chunks[-1].append(arg)
    return [parser().parse_args(chunk) for chunk in chunks]


async def serve(fakes: Sequence[tuple[str, FakeServer]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with AsyncExitStack() as running:
        for _, fake in fakes:
            await running.enter_async_context(fake)
        for name, fake in fakes:
            print(name, fake.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    asyncio.run(serve([(args.name, build(args)) for args in parse_all(given)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
