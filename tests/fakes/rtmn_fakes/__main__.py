"""Run one fake standalone, for local demos and load tests:

    python -m rtmn_fakes razorpay --port 8101 --key-id rzp_test_x --key-secret s3cret

It prints `<name> <url>` once listening and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Sequence
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
        for option in spec.options:
            sub.add_argument(option.flag, dest=option.keyword, help=option.help)
    return root


def build(args: argparse.Namespace) -> FakeServer:
    spec = FAKES[args.name]
    cls = getattr(importlib.import_module(f"rtmn_fakes.{args.name}"), spec.cls)
    given = {o.keyword: getattr(args, o.keyword) for o in spec.options}
    fake: FakeServer = cls(host=args.host, port=args.port, **{k: v for k, v in given.items() if v})
    return fake


async def serve(name: str, fake: FakeServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with fake:
        print(name, fake.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    asyncio.run(serve(args.name, build(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
