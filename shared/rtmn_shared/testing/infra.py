"""A test run's own PostgreSQL database and RabbitMQ vhost, made at start and dropped at the end."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from urllib.parse import quote

from rtmn_shared.cli.token import generate_keypair, mint
from rtmn_shared.provision import drop_database, provision
from rtmn_shared.suite import SERVICES

PG_HOST = os.environ.get("RTMN_TEST_PG", "127.0.0.1:5432")
ADMIN_DSN = os.environ.get("RTMN_TEST_ADMIN_DSN", f"postgresql://postgres@{PG_HOST}/postgres")
REDIS_BASE = os.environ.get("RTMN_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("RTMN_TEST_REDIS_DB", "15"))
AMQP_BASE = os.environ.get("RTMN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


@dataclass
class Suite:
    """Where this test run's infrastructure lives, and the keys its tokens are signed with."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    private_key: str = ""
    public_key: str = ""

    def __post_init__(self) -> None:
        self.private_key, self.public_key = generate_keypair()

    @property
    def database(self) -> str:
        return f"rtmn_test_{self.run_id}"

    @property
    def vhost(self) -> str:
        return f"rtmn-test-{self.run_id}"

    @property
    def database_url(self) -> str:
        return f"postgresql://{PG_HOST}/{self.database}"

    @property
    def amqp_url(self) -> str:
        return f"{AMQP_BASE}/{quote(self.vhost, safe='')}"

    @property
    def redis_url(self) -> str:
        return f"{REDIS_BASE}/{REDIS_DB}"

    def environ(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "REDIS_URL": self.redis_url,
            "JWT_PUBLIC_KEY": self.public_key,
            "LOG_LEVEL": "INFO",
        }

    def token(self, subject: str, scopes: str = "", ttl_seconds: int = 3600) -> str:
        return mint(self.private_key, subject, scopes, ttl_seconds)

    def bearer(self, subject: str, scopes: str = "") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, scopes)}"}

    async def create(self) -> None:
        await provision(ADMIN_DSN, self.database, list(SERVICES.values()))
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    async def destroy(self) -> None:
        await drop_database(ADMIN_DSN, self.database)
        rabbitmqctl("delete_vhost", self.vhost)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607
