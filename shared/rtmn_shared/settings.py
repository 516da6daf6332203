"""Settings read once from the environment; a bad variable stops start-up with one line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self, TypeVar, get_args
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    AmqpDsn,
    Field,
    PostgresDsn,
    RedisDsn,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from rtmn_shared.dedupe import DedupeWindow
from rtmn_shared.env_names import refusal, unread
from rtmn_shared.keyring import KeyRing, KeyRingError
from rtmn_shared.web.clients import LOOPBACK, Network, parse_networks

# What `make run`, the tests and `rtmn-token mint` agree on; production sets its own.
DEFAULT_ISSUER = "rtmn-auth"
DEFAULT_AUDIENCE = "rtmn-api"


def _unescape_pem(value: str) -> str:
    # A PEM in a one-line .env value carries its newlines as "\n".
    return value.replace("\\n", "\n")


Pem = Annotated[str, AfterValidator(_unescape_pem)]
"""A PEM key from one environment variable; literal "\\n" sequences become newlines."""


def _amqp_addresses(value: str) -> str:
    for address in value.split(","):
        try:
            _AMQP_DSN.validate_python(address.strip())
        except ValidationError as error:
            problem = error.errors()[0]
            raise PydanticCustomError(problem["type"], problem["msg"]) from None
    return value


_AMQP_DSN = TypeAdapter(AmqpDsn)
AmqpUrls = Annotated[str, AfterValidator(_amqp_addresses)]
"""One broker address, or a cluster's nodes comma-separated (rtmn_shared/events/brokers.py)."""


class CommonSettings(BaseSettings):
    """What every service reads. Field names are the environment names, upper-cased."""

    # An empty variable (KEY= in .env) counts as unset, so an empty credential means sandbox.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    database_url: PostgresDsn = PostgresDsn("postgresql://localhost:5432/rtmn")
    db_user: str | None = Field(default=None, description="defaults to rtmn_<service>")
    db_password: SecretStr | None = None
    # Migrations (and partition upkeep) log in as the schema's owner, a role of their own.
    db_migration_user: str | None = Field(
        default=None, description="defaults to rtmn_<service>_owner"
    )
    db_migration_password: SecretStr | None = None
    db_pool_size: int = Field(default=4, ge=1, le=50)
    redis_url: RedisDsn = RedisDsn("redis://localhost:6379/0")
    amqp_url: AmqpUrls = "amqp://guest:guest@localhost:5672/"
    amqp_prefetch: int = Field(default=64, ge=1, le=1000)
    # Each service logs in to the broker and Redis as `<prefix><service>` (service_logins()).
    service_user_prefix: str = Field(default="rtmn_", pattern=r"^[a-z0-9_]*$")
    jwt_public_key: Pem | None = Field(
        default=None, min_length=32, description="PEM public key that verifies bearer JWTs"
    )
    # Either or both: a kid-less token is checked with JWT_PUBLIC_KEY, a token's kid picks its
    # key from the JWKS (fetched at start, every REFRESH seconds, and on an unknown kid at most
    # once per COOLDOWN seconds).
    jwt_jwks_url: str | None = Field(default=None, pattern=r"^(https?|file)://")
    jwt_jwks_refresh_seconds: float = Field(default=300.0, ge=1.0, le=86400.0)
    jwt_jwks_cooldown_seconds: float = Field(default=10.0, ge=0.0, le=3600.0)
    jwt_issuer: str = Field(default=DEFAULT_ISSUER, min_length=1)
    jwt_audience: str = Field(default=DEFAULT_AUDIENCE, min_length=1)
    # Loopback unless told: `make run` serves this machine only (its gateway is the way in);
    # containers set HTTP_HOST=0.0.0.0 in docker-compose.yml and the Kustomize base.
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(default=None, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # "v2:<base64>,v1:<base64>": set, it unlocks the service's stored credentials (secrets.py).
    secrets_keys: SecretStr | None = None
    # How many UTC days of events the inbox and webhook dedupe remember (rtmn_shared/dedupe.py).
    dedupe_window_days: int = Field(default=7, ge=1, le=90)
    # CIDRs whose X-Forwarded-For is believed (web/clients.py): the gateway's, never "anyone".
    trusted_proxies: str = LOOPBACK

    @field_validator("trusted_proxies")
    @classmethod
    def _cidr_list(cls, value: str) -> str:
        parse_networks(value)  # a ValueError names the bad entry
        return value

    def proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @model_validator(mode="after")
    def _a_token_key(self) -> Self:
        if self.jwt_public_key is None and self.jwt_jwks_url is None:
            raise PydanticCustomError(
                "missing", "JWT_PUBLIC_KEY or JWT_JWKS_URL is required but neither is set"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_unread_names(cls, data: Any) -> Any:
        # A misspelt or unknown name of ours would otherwise be dropped without a word.
        names = unread(os.environ)
        if names:
            raise ValueError("\n".join(refusal(name) for name in names))
        return data

    # Other names a variable is read under (the seed guide's, or a standard one) -> our field.
    # Never ignored: one set alone is read as ours; both set to different values stop start-up.
    other_names: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _read_other_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        values = dict(data)
        for name, field in cls.other_names.items():
            value = os.environ.get(name)
            if not value:  # empty counts as unset, as for our own names
                continue
            ours = values.get(field)
            if ours is not None and _plain(ours) != value:
                raise ValueError(
                    f"{name} and {field.upper()} are both set, to different values: set one"
                )
            values[field] = value
        return cls.derive(values)

    @classmethod
    def derive(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Fields a service fills from others before validation (e.g. from a credentials file)."""
        return values

    def dedupe_window(self) -> DedupeWindow:
        return DedupeWindow(self.dedupe_window_days)

    def key_ring(self) -> KeyRing | None:
        if self.secrets_keys is None:
            return None
        try:
            return KeyRing.parse(self.secrets_keys.get_secret_value())
        except KeyRingError as error:  # its message names a version at most, never a key
            raise SettingsError(f"configuration error: {error}") from None


def _plain(value: Any) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(SystemExit):
    """Raised with a message that names each bad variable; SystemExit so no traceback shows."""


def describe(error: ValidationError) -> str:
    lines: list[str] = []
    for issue in error.errors():
        if not issue["loc"]:  # a check across variables names them itself, a line for each
            message = issue["msg"].removeprefix("Value error, ")
            lines.extend(f"configuration error: {line}" for line in message.splitlines())
            continue
        name = "_".join(str(part) for part in issue["loc"]).upper()
        problem = "is required but not set" if issue["type"] == "missing" else issue["msg"]
        lines.append(f"configuration error: {name} {problem}")
    return "\n".join(lines)


def load_settings(cls: type[SettingsT], **values: Any) -> SettingsT:
    """From the environment, plus `values`, which win over it: pass only what it leaves unset."""
    try:
        return cls(**values)
    except ValidationError as error:
        raise SettingsError(describe(error)) from None


def service_logins(
    service: str, environ: Mapping[str, str] = os.environ, **urls: str
) -> dict[str, str]:
    """AMQP_URL and REDIS_URL as the service's own login, for each of them whose password is set:
    AMQP_PASSWORD / REDIS_PASSWORD, or <SERVICE>_AMQP_PASSWORD / <SERVICE>_REDIS_PASSWORD where one
    environment serves every service (`make run`, the tests). Without one the URL is used as
    given, so a deployment may also put the whole login in the URL. `urls` (amqp_url=,
    redis_url=) replace the environment's as the addresses to log in to."""
    user = environ.get("SERVICE_USER_PREFIX", "rtmn_") + service
    values = {}
    for field, default in (
        ("amqp_url", "amqp://localhost:5672/"),
        ("redis_url", "redis://localhost:6379/0"),
    ):
        kind = field.split("_")[0].upper()
        password = environ.get(f"{kind}_PASSWORD") or environ.get(
            f"{service.upper()}_{kind}_PASSWORD"
        )
        if password:
            url = urls.get(field) or environ.get(field.upper()) or default
            values[field] = with_login(url, user, password)
    return values


def with_login(url: str, user: str, password: str) -> str:
    """The URL (each of a broker's comma-separated addresses) logging in as `user`."""
    return ",".join(_with_login(address.strip(), user, password) for address in url.split(","))


def _with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def secret_settings(cls: type[CommonSettings]) -> dict[str, str]:
    """Variable name -> field of each credential a service declares (its own SecretStr fields).

    The common ones are left out: the DB_ passwords and SECRETS_KEYS are how the store is reached.
    """
    return {
        name.upper(): name
        for name, field in cls.model_fields.items()
        if name not in CommonSettings.model_fields
        and (field.annotation is SecretStr or SecretStr in get_args(field.annotation))
    }


def set_in_environment(cls: type[BaseSettings]) -> set[str]:
    """The fields the environment sets, by the settings' own rules (case, empty means unset)."""
    return {name.lower() for name in EnvSettingsSource(cls)()}
