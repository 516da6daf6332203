"""A test run's own PostgreSQL database, RabbitMQ vhost and Redis database: made at start,
emptied or dropped at the end, so neither `make run` nor an earlier run can interfere.

Nothing runs as the broker's administrator: the run makes its own logins (`rtmn_t<run>_<name>`,
rtmn_shared/access.py) on the broker and in Redis, one per service with the permissions it has
in production, one per producer outside the suite and the operator, and a `harness` login with
every permission on the run's vhost only, for tests of the event machinery itself."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from redis.asyncio import Redis

from rtmn_shared import access
from rtmn_shared.cli.token import generate_keypair, mint
from rtmn_shared.events.publishers import Logins
from rtmn_shared.pgadmin import PassFile, admin_url
from rtmn_shared.provision import drop_database, provision
from rtmn_shared.suite import SERVICES, ServiceInfo

PG_HOST = os.environ.get("RTMN_TEST_PG", "127.0.0.1:5432")
# The passwords `make` keeps (rtmn_shared/pgadmin.py), also for a test run started by hand.
_KEPT = Path(__file__).resolve().parents[3] / ".run" / "pgpass"
if "PGPASSFILE" not in os.environ and _KEPT.exists():
    os.environ["PGPASSFILE"] = str(_KEPT)
_host, _port = PG_HOST.rsplit(":", 1)
PASSFILE = PassFile.from_environment(int(_port))
ADMIN_DSN = os.environ.get(
    "RTMN_TEST_ADMIN_DSN",
    admin_url(_host, int(_port)) if PASSFILE else f"postgresql://postgres@{PG_HOST}/postgres",
)


def password_of(role: str) -> str | None:
    """The role's password, for a connection the pgpass file cannot match (another port)."""
    return PASSFILE.ensure([role])[role] if PASSFILE is not None else None


async def provision_for_tests(database: str, services: list[ServiceInfo]) -> None:
    """`provision` as `rtmn-db init` does it: each role with its password from the pgpass file,
    where there is one (a server that trusts TCP logins needs none)."""
    roles = [role for s in services for role in (s.owner, s.role)]
    passwords = PASSFILE.ensure(roles) if PASSFILE is not None else None
    await provision(ADMIN_DSN, database, services, passwords)


REDIS_BASE = os.environ.get("RTMN_TEST_REDIS", "redis://127.0.0.1:6379")
# Redis has no throwaway databases: a run claims a free numbered one (0 stays `make run`'s).
REDIS_DBS = range(1, 12)
REDIS_CLAIM_SECONDS = 6 * 3600
# The administrator's URL serves only to make the run's logins; nothing else uses it.
AMQP_BASE = os.environ.get("RTMN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
HARNESS = "harness"
_EVERYTHING = access.BrokerGrant(".*", ".*", ".*", ".*")


@dataclass
class Suite:
    """Where this test run's infrastructure lives, and the keys its tokens are signed with."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    private_key: str = ""
    public_key: str = ""
    redis_db: int | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    # The broker's nodes (host:port each; one but for tests/cluster) and the one rabbitmqctl
    # administers the run's vhost and logins through (None: the local default node).
    amqp_hosts: tuple[str, ...] = (AMQP_BASE.rpartition("@")[2],)
    broker_node: str | None = None

    def __post_init__(self) -> None:
        self.private_key, self.public_key = generate_keypair()
        self.passwords = {name: access.new_password() for name in (*access.principals(), HARNESS)}

    @property
    def logins(self) -> Logins:
        return Logins(f"rtmn_t{self.run_id}_")

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
        """The harness login: every permission on this run's vhost, and no producer's."""
        return self.amqp_url_as(HARNESS)

    def amqp_url_as(self, name: str, vhost: str | None = None) -> str:
        """The run's broker (or another `vhost` it was granted) as `name`: a service,
        `accounts`, `commerce`, `ops` or `harness`."""
        login = quote(self.logins.of(name), safe="")
        password = quote(self.passwords[name], safe="")
        path = quote(vhost or self.vhost, safe="")
        return ",".join(f"amqp://{login}:{password}@{host}/{path}" for host in self.amqp_hosts)

    def redis_url_as(self, service: str) -> str:
        login = quote(self.logins.of(service), safe="")
        host = self.redis_url.partition("://")[2]
        return f"redis://{login}:{quote(self.passwords[service], safe='')}@{host}"

    @property
    def redis_url(self) -> str:
        if self.redis_db is None:
            raise RuntimeError("Suite.create() claims the run's Redis database first")
        return f"{REDIS_BASE}/{self.redis_db}"

    def environ(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "JWT_PUBLIC_KEY": self.public_key,
            "LOG_LEVEL": "INFO",
            # Each service logs in as itself (settings.service_logins).
            "SERVICE_USER_PREFIX": self.logins.prefix,
            # ...as do the outside producers and rtmn-dlq (ACCOUNTS_, COMMERCE_, OPS_).
            **{
                f"{name.upper()}_AMQP_PASSWORD": self.passwords[name]
                for name in access.principals()
            },
            **(
                {f"{name.upper()}_REDIS_PASSWORD": self.passwords[name] for name in SERVICES}
                if self.redis_db is not None
                else {}
            ),
            # A suite that was never created (a bench needing only a database) has no Redis.
            **({"REDIS_URL": self.redis_url} if self.redis_db is not None else {}),
        }

    def token(self, subject: str, scopes: str = "", ttl_seconds: int = 3600) -> str:
        return mint(self.private_key, subject, scopes, ttl_seconds)

    def bearer(self, subject: str, scopes: str = "") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, scopes)}"}

    async def create(self) -> None:
        await provision_for_tests(self.database, list(SERVICES.values()))
        rabbitmqctl("add_vhost", self.vhost, node=self.broker_node)
        self.grant(self.vhost)
        self.redis_db = await self._claim_redis_db()
        async with Redis.from_url(f"{REDIS_BASE}/0") as admin:
            services = {name: self.passwords[name] for name in SERVICES}
            await access.provision_redis(admin, self.logins, services)

    def grant(self, vhost: str) -> None:
        """The run's logins, with their permissions, on `vhost` (made if missing)."""
        access.import_definitions(
            access.broker_definitions(
                vhost,
                self.logins,
                self.passwords,
                lambda name: _EVERYTHING if name == HARNESS else access.broker_grant(name),
            ),
            self.broker_node,
        )

    async def destroy(self) -> None:
        await drop_database(ADMIN_DSN, self.database)
        rabbitmqctl("delete_vhost", self.vhost, node=self.broker_node)
        access.delete_broker_users(
            (self.logins.of(name) for name in self.passwords), self.broker_node
        )
        if self.redis_db is not None:
            async with Redis.from_url(f"{REDIS_BASE}/0") as admin:
                await access.delete_redis_users(admin, (self.logins.of(s) for s in SERVICES))
            await self._flush_redis_db()
            async with Redis.from_url(f"{REDIS_BASE}/0") as claims:
                await claims.delete(_claim_key(self.redis_db))

    async def _claim_redis_db(self) -> int:
        # Claims live in database 0 and expire, so a run that died frees its database in time.
        async with Redis.from_url(f"{REDIS_BASE}/0") as claims:
            for number in REDIS_DBS:
                if await claims.set(
                    _claim_key(number), self.run_id, nx=True, ex=REDIS_CLAIM_SECONDS
                ):
                    self.redis_db = number
                    await self._flush_redis_db()  # whatever a dead run left behind
                    return number
        raise RuntimeError(f"every test Redis database {REDIS_DBS} is claimed by another run")

    async def _flush_redis_db(self) -> None:
        async with Redis.from_url(self.redis_url) as redis:
            await redis.flushdb()


def _claim_key(number: int) -> str:
    return f"rtmn:test-redis-db:{number}"


def rabbitmqctl(*args: str, node: str | None = None) -> None:
    on = ["-n", node] if node else []
    subprocess.run(["rabbitmqctl", "-q", *on, *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607
