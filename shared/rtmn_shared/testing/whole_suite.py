"""The whole suite's environment as the end-to-end tests give it: every service on this run's
database and vhost, sandbox providers, behind the gateway at `gateway` (its URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from rtmn_shared.cli.token import generate_keypair
from rtmn_shared.suite import SERVICES
from rtmn_shared.testing.infra import Suite


def environ(suite: Suite, work: Path, gateway: str) -> dict[str, str]:
    otp_private, _ = generate_keypair()
    return {
        **suite.environ(),
        "JWT_PUBLIC_KEY": suite.public_key.replace("\n", "\\n"),
        "OTP_SIGNING_KEY": otp_private.replace("\n", "\\n"),
        "OTP_HASH_KEY": "e2e-" + "k" * 40,
        "RAZORPAY_WEBHOOK_SECRET": f"e2e-webhook-{suite.run_id}",
        "MEDIA_LOCAL_DIR": str(work / "media"),
        "MEDIA_PUBLIC_URL": gateway,
        "LOG_LEVEL": "WARNING",
    }


def write_env_file(path: Path, env: Mapping[str, str]) -> Path:
    """As honcho's -e and scripts/demo.py's --env read it."""
    path.write_text("".join(_env_line(k, v) + "\n" for k, v in env.items()))
    return path


def demo_command(env_file: Path, private_key: Path, gateway: str | None = None) -> list[str]:
    """`make demo` against a suite: its env file, its token key, its gateway (default :8080)."""
    where = ["--gateway", gateway] if gateway is not None else []
    return [
        sys.executable,
        "scripts/demo.py",
        *where,
        "--env",
        str(env_file),
        "--key",
        str(private_key),
    ]


def migrate_all(root: Path, env: Mapping[str, str]) -> None:
    for name in SERVICES:
        subprocess.run(  # noqa: S603 - our own interpreter and service names
            [sys.executable, "-m", name, "migrate"],
            cwd=root,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=120,
        )


def _env_line(key: str, value: str) -> str:
    return f"{key}='{value}'" if "\n" in value or " " in value else f"{key}={value}"
