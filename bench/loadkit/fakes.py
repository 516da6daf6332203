"""SendGrid, FCM and Razorpay as their contract fakes, all three in one process of their own:
a process each cost this machine a quarter more CPU (more wake-ups for the same requests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rtmn_fakes.__main__ import JOIN
from rtmn_shared.testing.processes import ProcessSpec, free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")
# Supervised processes named so are the providers', which run elsewhere in production.
FAKE_PREFIX = "fake-"
PROCESS = f"{FAKE_PREFIX}providers"
KEEP = 10_000  # requests each fake remembers


@dataclass
class Fakes:
    razorpay_key: tuple[str, str]
    sendgrid_key: str
    fcm: tuple[str, str]  # project, access token
    webhook_secret: str
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls) -> Fakes:
        tag = uuid.uuid4().hex[:8]
        return cls(
            (f"rzp_test_load{tag}", f"rzp-secret-{tag}"),
            f"SG.load-{tag}.key-{tag}",
            (f"rtmn-load-{tag}", f"fcm-token-{tag}"),
            f"whsec-load-{tag}",
        )

    def specs(self) -> dict[str, ProcessSpec]:
        options = {
            "razorpay": ["--key-id", self.razorpay_key[0], "--key-secret", self.razorpay_key[1]],
            "sendgrid": ["--api-key", self.sendgrid_key],
            "fcm": ["--project-id", self.fcm[0], "--access-token", self.fcm[1]],
        }
        # Bounded records: a soak keeps the fakes' memory and their collector's pauses (which
        # would show as the suite's email and push latency) from growing with every request.
        fakes = [
            [name, "--port", self.url(name).rsplit(":", 1)[1], "--keep", str(KEEP), *extra]
            for name, extra in options.items()
        ]
        argv = [PYTHON, "-m", "rtmn_fakes", *fakes[0]]
        for fake in fakes[1:]:
            argv += [JOIN, *fake]
        # It prints each fake's address once all three listen.
        return {PROCESS: ProcessSpec(PROCESS, tuple(argv), ready_line="fcm http")}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.setdefault(name, free_port())}"

    def environ(self) -> dict[str, str]:
        return {
            "RAZORPAY_KEY_ID": self.razorpay_key[0],
            "RAZORPAY_KEY_SECRET": self.razorpay_key[1],
            "RAZORPAY_API_BASE": self.url("razorpay"),
            "RAZORPAY_WEBHOOK_SECRET": self.webhook_secret,
            "SENDGRID_API_KEY": self.sendgrid_key,
            "SENDGRID_API_URL": self.url("sendgrid"),
            "FIREBASE_PROJECT_ID": self.fcm[0],
            "FCM_ACCESS_TOKEN": self.fcm[1],
            "FCM_URL": self.url("fcm") + "/v1/projects/{0}/messages:send",
        }

    def secrets(self) -> list[str]:
        return [self.razorpay_key[1], self.sendgrid_key, self.fcm[1], self.webhook_secret]
