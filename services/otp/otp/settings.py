"""OTP settings: the seed's rules (6 digits, 5 minutes, 30 s, 3 attempts) are the defaults."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from rtmn_shared.settings import CommonSettings


class OtpSettings(CommonSettings):
    # HMAC key for code digests and phone hashes (Redis key names, otp.verified's phone_hash).
    otp_hash_key: SecretStr = Field(min_length=32)
    # Ed25519 private key (PEM) that signs the verification token; its public half is published.
    otp_signing_key: SecretStr = Field(min_length=32)
    otp_signing_public_key: str | None = None
    otp_token_ttl_s: int = Field(default=600, ge=30, le=3600)
    otp_token_issuer: str = "rtmn/otp"  # noqa: S105 - an issuer name

    otp_allowed_regions: str = Field(default="IN", description="comma-separated ISO regions")
    otp_purposes: str = Field(default="login", description="comma-separated allow-list")
    otp_code_ttl_s: int = Field(default=300, ge=30, le=3600)
    # Per phone and client (IPv4 address or IPv6 /64): a stranger spends only his own.
    otp_cooldown_s: int = Field(default=30, ge=1, le=3600)
    otp_max_attempts: int = Field(default=3, ge=1, le=10)
    otp_hourly_cap: int = Field(default=5, ge=1)
    otp_daily_cap: int = Field(default=10, ge=1)
    otp_ip_hourly_cap: int = Field(default=30, ge=1)
    # Per phone, all clients: wrong codes that kill a code; sends before the gap doubles, its cap.
    otp_max_wrong_per_code: int = Field(default=10, ge=1, le=50)
    otp_backoff_after: int = Field(default=5, ge=1)
    otp_backoff_max_s: int = Field(default=900, ge=1, le=86_400)
    otp_sandbox_log_codes: bool = False
    otp_app_name: str = "RTMN"

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = Field(default=None, description="tests: a contract fake")
    twilio_timeout_s: float = Field(default=5.0, gt=0, le=30)

    msg91_auth_key: SecretStr | None = None
    msg91_flow_id: str | None = None
    msg91_sender_id: str | None = None
    msg91_code_variable: str = "otp"
    msg91_base_url: str = "https://control.msg91.com"
    msg91_timeout_s: float = Field(default=5.0, gt=0, le=30)

    @field_validator("otp_signing_key", mode="before")
    @classmethod
    def _unescape_private(cls, value: object) -> object:
        return value.replace("\\n", "\n") if isinstance(value, str) else value

    @field_validator("otp_signing_public_key")
    @classmethod
    def _unescape_public(cls, value: str | None) -> str | None:
        return value.replace("\\n", "\n") if value else None

    @model_validator(mode="after")
    def _twilio_needs_a_sender(self) -> OtpSettings:
        if self.twilio_live and not (self.twilio_phone_number or self.twilio_messaging_service_sid):
            raise ValueError(
                "TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID is required with Twilio"
            )
        return self

    @model_validator(mode="after")
    def _backoff_cap_covers_the_cooldown(self) -> OtpSettings:
        if self.otp_backoff_max_s < self.otp_cooldown_s:
            raise ValueError("OTP_BACKOFF_MAX_S must be at least OTP_COOLDOWN_S")
        return self

    @property
    def twilio_live(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def msg91_live(self) -> bool:
        return bool(self.msg91_auth_key and self.msg91_flow_id)

    @property
    def regions(self) -> frozenset[str]:
        return _split(self.otp_allowed_regions, upper=True)

    @property
    def purposes(self) -> frozenset[str]:
        return _split(self.otp_purposes)


def _split(value: str, *, upper: bool = False) -> frozenset[str]:
    items = (part.strip() for part in value.split(","))
    return frozenset(item.upper() if upper else item for item in items if item)
