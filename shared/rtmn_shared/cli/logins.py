"""The broker and Redis logins part of `rtmn-db init` (rtmn_shared/access.py says what each may do).

Broker: for each principal whose <NAME>_AMQP_PASSWORD is set (the services, `accounts` and
`commerce` outside the suite, `ops` for rtmn-dlq), a user `<SERVICE_USER_PREFIX><name>` with its
permissions on AMQP_URL's vhost, applied in one definitions import: through the management API at
RABBITMQ_MANAGEMENT_URL (http://admin:pass@host:15672) when set, else the local rabbitmqctl.
Redis: for each service whose <SERVICE>_REDIS_PASSWORD is set, `ACL SETUSER` through
REDIS_ADMIN_URL (default REDIS_URL); the `default` user is never changed. Both are idempotent.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rtmn_shared import access
from rtmn_shared.events.publishers import DEFAULT_PREFIX, Logins


class LoginsError(Exception):
    pass


async def provision_logins(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Creates or updates the logins the environment has passwords for; what was done."""
    logins = Logins(environ.get("SERVICE_USER_PREFIX", DEFAULT_PREFIX))
    done = []
    broker = access.passwords_from(environ, "AMQP")
    if broker:
        vhost = unquote(urlsplit(environ.get("AMQP_URL", "amqp://localhost/")).path[1:]) or "/"
        document = access.broker_definitions(vhost, logins, broker)
        management = environ.get("RABBITMQ_MANAGEMENT_URL")
        try:
            if management:
                await access.post_definitions(management, document)
            else:
                access.import_definitions(document)
        except (OSError, subprocess.SubprocessError) as error:
            raise LoginsError(f"cannot create the broker logins: {error}") from None
        done.append(f"broker logins {', '.join(sorted(broker))} on vhost {vhost}")
    cache = access.passwords_from(environ, "REDIS")
    if cache:
        url = environ.get("REDIS_ADMIN_URL") or environ.get("REDIS_URL", "redis://localhost:6379/0")
        try:
            async with Redis.from_url(url, socket_connect_timeout=5) as admin:
                await access.provision_redis(admin, logins, cache)
        except (OSError, RedisError) as error:
            raise LoginsError(f"cannot create the Redis users: {type(error).__name__}") from None
        done.append(f"Redis users {', '.join(sorted(cache))}")
    return done
