"""OTP settings: the seed's rules (6 digits, 5 minutes, 30 s, 3 attempts) are the defaults."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from otp.domain import APP_HASH, sms_body
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
    # SMS-pumping defence per destination prefix (country code + the first national digits):
    # blocked when, over the window, >= MIN_SENDS codes went there and under FLOOR were verified.
    otp_pumping_floor: float = Field(default=0.2, ge=0, le=1, description="0 switches it off")
    otp_pumping_min_sends: int = Field(default=50, ge=1)
    otp_pumping_window_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    otp_pumping_prefix_digits: int = Field(default=4, ge=1, le=8)
    # Delivery receipts: the base URL providers reach this service at. Set, Twilio reports each
    # delivery to <url>/api/otp/receipts/twilio (signed) and a failed one is resent by the next
    # provider or channel. MSG91's report webhook is unsigned: its URL carries this key.
    otp_public_url: str | None = Field(default=None, pattern=r"^https?://[^\s?#]+$")
    otp_msg91_report_key: SecretStr | None = Field(default=None, min_length=32)
    otp_sandbox_log_codes: bool = False
    otp_app_name: str = "RTMN"
    # Set: SMS bodies follow Android's SMS Retriever format, so the app reads the code itself.
    otp_android_app_hash: str | None = Field(default=None, pattern=APP_HASH.pattern)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = Field(default=None, description="tests: a contract fake")
    # WhatsApp: a WhatsApp-enabled sender (E.164) and an approved template whose {{1}} is the code.
    twilio_whatsapp_from: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    twilio_whatsapp_content_sid: str | None = Field(default=None, pattern=r"^HX[0-9a-fA-F]{32}$")
    # Voice calls come from this number; TWILIO_PHONE_NUMBER when unset.
    twilio_voice_from: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
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
    def _whatsapp_needs_a_sender_and_a_template(self) -> OtpSettings:
        if bool(self.twilio_whatsapp_from) != bool(self.twilio_whatsapp_content_sid):
            raise ValueError("TWILIO_WHATSAPP_FROM and TWILIO_WHATSAPP_CONTENT_SID go together")
        return self

    @model_validator(mode="after")
    def _backoff_cap_covers_the_cooldown(self) -> OtpSettings:
        if self.otp_backoff_max_s < self.otp_cooldown_s:
            raise ValueError("OTP_BACKOFF_MAX_S must be at least OTP_COOLDOWN_S")
        return self

    @model_validator(mode="after")
    def _retriever_message_fits(self) -> OtpSettings:
        if self.otp_android_app_hash:
            minutes = max(1, self.otp_code_ttl_s // 60)
            sms_body("0" * 6, app_name=self.otp_app_name, minutes=minutes,
                     app_hash=self.otp_android_app_hash)  # fmt: skip
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
