"""Least privilege between the services on the broker and in Redis: one login each.

Each principal (a service, a producer outside the suite, the operator's tools) logs in as
`<prefix><name>`. On the broker it may declare, write and read only the exchanges and queues it
uses (the topology: `rtmn.events`, its alternate exchange, and its own `<service>.*` groups with
their retry queues and DLQs), and publish to `rtmn.events` only the types the catalogue says it
produces (topic permissions). In Redis it reaches only its own `<service>:` keys. `rtmn-db init`
and the test suite apply these; deploy/k8s and docker-compose declare the same.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from redis.asyncio import Redis

from rtmn_shared.events.catalogue import EXTERNAL_PRODUCERS, PRODUCED_BY
from rtmn_shared.events.publishers import OPERATOR, Logins
from rtmn_shared.suite import EXCHANGE, SERVICES, UNROUTED_EXCHANGE, UNROUTED_QUEUE

# The services that run consumer groups (payments' consumer role is reconciliation today, but
# its group prefix is kept for the events it will consume).
CONSUMERS = frozenset({"payments", "notify", "wallet", "analytics"})
NOTHING = "^$"
# KEDA's queue-depth scaler: a passive queue.declare answers a queue's depth to a login with no
# permission at all, and nothing else (it can neither consume nor publish nor declare).
SCALER = "keda"


@dataclass(frozen=True)
class BrokerGrant:
    configure: str
    write: str
    read: str
    # Routing keys it may publish to the events exchange with (RabbitMQ topic permissions)...
    publishes: str
    # ...and bind queues to it with: none but a consumer's (declaring the exchange with its
    # alternate exchange needs read on it, which alone would let a producer bind a queue).
    binds: str = ".*"


def _any_of(*names: str) -> str:
    return "^(" + "|".join(names) + ")$" if names else NOTHING


def produced_by(name: str) -> tuple[str, ...]:
    return tuple(sorted(t for t, producers in PRODUCED_BY.items() if name in producers))


def broker_grant(name: str) -> BrokerGrant:
    """What `name` may do in the suite's vhost, from the topology and the catalogue."""
    if name == SCALER:
        return BrokerGrant(NOTHING, NOTHING, NOTHING, NOTHING, NOTHING)
    if name == OPERATOR:  # rtmn-dlq: reads a dead-letter queue, puts messages back in its group
        return BrokerGrant(NOTHING, _any_of(r"amq\.default"), r"^.+\.dlq$", NOTHING, NOTHING)
    events, unrouted = re.escape(EXCHANGE), re.escape(UNROUTED_EXCHANGE)
    declared = sorted({events, unrouted, re.escape(UNROUTED_QUEUE)})
    publishes = _any_of(*(re.escape(t) for t in produced_by(name)))
    if name not in CONSUMERS:
        # Declaring the exchanges binds the unrouted queue (write on it, read on its exchange)
        # and names the alternate exchange (read on the events exchange, write on the other).
        write = declared if produced_by(name) else [unrouted]
        read = _any_of(events, unrouted)
        return BrokerGrant(_any_of(*declared), _any_of(*write), read, publishes, NOTHING)
    own = re.escape(name) + r"\..+"
    return BrokerGrant(
        configure=_any_of(*declared, own),
        # amq.default: moving a delivery to its own retry queue or DLQ.
        write=_any_of(*(declared if produced_by(name) else [unrouted]), r"amq\.default", own),
        read=_any_of(events, unrouted, own),
        # Its types, and routing keys of its own for work it queues to itself (notify's
        # campaign batches); the consumer still checks the type inside against the catalogue.
        publishes=_any_of(*(re.escape(t) for t in produced_by(name)), own),
    )


def principals() -> tuple[str, ...]:
    return (*SERVICES, *EXTERNAL_PRODUCERS, OPERATOR, SCALER)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def _password_hash(password: str) -> str:
    # RabbitMQ's rabbit_password_hashing_sha256: base64(salt || sha256(salt || password)).
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def broker_definitions(
    vhost: str,
    logins: Logins,
    passwords: Mapping[str, str],
    grant_of: Callable[[str], BrokerGrant] = broker_grant,
) -> bytes:
    """A definitions document (rabbitmqctl import_definitions, or POST /api/definitions) that
    creates or updates the logins of `passwords`' principals and their permissions."""
    users: list[dict[str, object]] = []
    permissions: list[dict[str, object]] = []
    topics: list[dict[str, object]] = []
    for name, password in passwords.items():
        user, grant = logins.of(name), grant_of(name)
        users.append(
            {
                "name": user,
                "password_hash": _password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
            }
        )
        permissions.append(
            {
                "user": user,
                "vhost": vhost,
                "configure": grant.configure,
                "write": grant.write,
                "read": grant.read,
            }
        )
        topics.append(
            {
                "user": user,
                "vhost": vhost,
                "exchange": EXCHANGE,
                "write": grant.publishes,
                "read": grant.binds,
            }
        )
    document = {
        "vhosts": [{"name": vhost}],
        "users": users,
        "permissions": permissions,
        "topic_permissions": topics,
    }
    return json.dumps(document).encode()


def import_definitions(document: bytes, node: str | None = None) -> None:
    """Applies a definitions document with the local node's rabbitmqctl (one call, idempotent;
    read from stdin, which 3.10 takes with no path, so no file ever holds the hashes), or with
    that of `node` (a cluster's member; the others get it from there)."""
    subprocess.run(  # noqa: S603
        ["rabbitmqctl", "-q", *_on(node), "import_definitions", "--format", "json"],  # noqa: S607
        input=document,
        check=True,
        capture_output=True,
        timeout=120,
    )


def delete_broker_users(users: Iterable[str], node: str | None = None) -> None:
    """Deletes logins, in parallel (each rabbitmqctl call starts a VM of its own)."""
    running = [
        subprocess.Popen(  # noqa: S603
            ["rabbitmqctl", "-q", *_on(node), "delete_user", user],  # noqa: S607
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for user in users
    ]
    for process in running:
        process.wait(timeout=120)


def _on(node: str | None) -> list[str]:
    return ["-n", node] if node else []


def redis_rules(name: str, password: str) -> list[str]:
    """ACL SETUSER rules: its own keys only; the commands of a cache, rate limits and Lua
    scripts (EVAL/EVALSHA), none that administers the server or reaches beyond its keys."""
    return [
        "reset",
        "on",
        f">{password}",
        f"~{name}:*",
        "resetchannels",
        "+@all",
        "-@dangerous",
        "-@admin",
        "-@pubsub",
        "+script|load",
        "+script|exists",
    ]


async def provision_redis(redis: Redis, logins: Logins, passwords: Mapping[str, str]) -> None:
    """Creates or resets each service's Redis user; the `default` user is never touched."""
    for name, password in passwords.items():
        user = logins.of(name)
        if user == "default":
            raise ValueError("the default Redis user is not a service's")
        rules = redis_rules(name, password)
        await redis.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]


async def delete_redis_users(redis: Redis, users: Iterable[str]) -> None:
    names = [user for user in users if user != "default"]
    if names:
        await redis.execute_command("ACL", "DELUSER", *names)  # type: ignore[no-untyped-call]


async def post_definitions(management_url: str, document: bytes) -> None:
    """Applies a definitions document through the management plugin's HTTP API (compose, or a
    broker without a local rabbitmqctl): POST /api/definitions, with the URL's credentials."""
    url = urlsplit(management_url)
    auth = aiohttp.BasicAuth(unquote(url.username or ""), unquote(url.password or ""))
    host = url.netloc.rpartition("@")[2]
    endpoint = urlunsplit((url.scheme, host, url.path.rstrip("/") + "/api/definitions", "", ""))
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        headers = {"content-type": "application/json"}
        async with session.post(endpoint, data=document, auth=auth, headers=headers) as answer:
            if answer.status >= 300:
                raise OSError(f"POST /api/definitions answered {answer.status}")


def passwords_from(environ: Mapping[str, str], kind: str) -> dict[str, str]:
    """Each principal's <NAME>_<KIND>_PASSWORD (AMQP or REDIS) that the environment sets."""
    names = principals() if kind == "AMQP" else tuple(SERVICES)
    return {
        name: value for name in names if (value := environ.get(f"{name.upper()}_{kind}_PASSWORD"))
    }
