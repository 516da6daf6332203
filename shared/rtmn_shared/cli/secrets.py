"""`python -m <service> secrets`: the service's credentials, sealed in its own schema.

    python -m payments secrets put RAZORPAY_KEY_SECRET < key.txt  # the value from stdin only
    python -m payments secrets list               # names, key versions, times; never values
    python -m payments secrets rotate --batch 100 # every row re-sealed under the current key
    python -m payments secrets new-key            # a fresh key for SECRETS_KEYS

A name is the variable the service reads; where the environment sets that variable, the
environment wins. SECRETS_KEYS must be set: its first key seals, every key in it opens.
Key rotation, step by step: docs/security.md, "Secrets at rest".
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import asyncpg

from rtmn_shared.keyring import KeyRing, SecretsError, generate_key
from rtmn_shared.secrets import SecretStore
from rtmn_shared.service import Service, open_pool
from rtmn_shared.settings import CommonSettings, load_settings, secret_settings


def parser(service: Service[Any]) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=f"python -m {service.name} secrets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    put = commands.add_parser("put", help="seal NAME's value, read from stdin (never argv)")
    put.add_argument("name", help=", ".join(secret_settings(service.settings)) or "none")
    commands.add_parser("list", help="stored names, key versions and times; never values")
    rotate = commands.add_parser("rotate", help="re-seal every row under the current key")
    rotate.add_argument("--batch", type=_positive, default=100, help="rows per transaction")
    commands.add_parser("new-key", help="print a fresh key to add to SECRETS_KEYS")
    return top


def main(service: Service[Any], argv: Sequence[str]) -> None:
    args = parser(service).parse_args(argv)
    if args.command == "new-key":
        print(generate_key())
        return
    fail = f"{service.name} secrets"
    settings = load_settings(CommonSettings)
    ring = settings.key_ring()
    if ring is None:
        sys.exit(f"{fail}: SECRETS_KEYS is not set; it holds the keys that seal the secrets")
    if args.command == "put":
        name = _declared(service, args.name)
        work = put(service, settings, ring, name, _read_value(name))
    elif args.command == "list":
        work = show(service, settings, ring)
    else:
        work = rotate(service, settings, ring, args.batch)
    try:
        asyncio.run(work)
    except asyncpg.UndefinedTableError:
        sys.exit(f"{fail}: no secrets table yet; run `python -m {service.name} migrate` first")
    except SecretsError as error:  # names a secret and a key version, never a value
        sys.exit(f"{fail}: {error}")


async def put(
    service: Service[Any], settings: CommonSettings, ring: KeyRing, name: str, value: str
) -> None:
    async with AsyncExitStack() as stack:
        await SecretStore(await open_pool(service.info, settings, stack), ring).put(name, value)
    print(f"{name} sealed under key {ring.current}")
    if os.environ.get(name):
        print(f"note: {name} is also set in this environment; where it is set, it wins")


async def show(service: Service[Any], settings: CommonSettings, ring: KeyRing) -> None:
    declared = secret_settings(service.settings)
    async with AsyncExitStack() as stack:
        store = SecretStore(await open_pool(service.info, settings, stack), ring)
        entries, versions = await store.entries(), await store.versions()
    for entry in entries:
        remark = "" if entry.name in declared else f"  (not read by {service.name})"
        print(f"{entry.name:40} {entry.key_version:8} {entry.updated_at.isoformat()}{remark}")
    print(f"rows per key: {_counts(versions, ring)}")


async def rotate(
    service: Service[Any], settings: CommonSettings, ring: KeyRing, batch: int
) -> None:
    """Batch by batch, each one short transaction: running services and readers never wait."""
    async with AsyncExitStack() as stack:
        store = SecretStore(await open_pool(service.info, settings, stack), ring)
        total = 0
        while moved := await store.rotate_batch(batch):
            total += moved
            print(f"re-sealed {moved} (total {total})")
        versions = await store.versions()
    print(
        f"{total} secret(s) re-sealed under {ring.current}; rows per key: {_counts(versions, ring)}"
    )


def _counts(versions: dict[str, int], ring: KeyRing) -> str:
    if not versions:
        return "none stored"
    return ", ".join(
        f"{version}={count}" + ("" if version in ring.keys else " (key not in SECRETS_KEYS)")
        for version, count in sorted(versions.items())
    )


def _declared(service: Service[Any], name: str) -> str:
    declared = secret_settings(service.settings)
    if name.upper() not in declared:
        sys.exit(
            f"{service.name} secrets: {name} is not a secret setting of {service.name}"
            f" (those are: {', '.join(declared) or 'none'})"
        )
    return name.upper()


def _read_value(name: str) -> str:
    """From a terminal without echo, else all of stdin less the newline `echo` or a file adds."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"{name}: ")
    else:
        value = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if not value:
        sys.exit(f"secrets: an empty {name} is refused; leave a credential unset for its sandbox")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
