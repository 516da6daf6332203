"""The payments service's settings: the shared ones plus each gateway's credentials."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from payments import routing
from payments.providers.gateway import RAZORPAY_LIMITS, STRIPE_LIMITS
from rtmn_shared.settings import CommonSettings

# The longest a provider keeps retrying a webhook: Stripe 3 days (Razorpay 24 h).
PROVIDER_RETRY_DAYS = 3
LIMITS = {"razorpay": RAZORPAY_LIMITS, "stripe": STRIPE_LIMITS}


class Settings(CommonSettings):
    # The seed guide's names for the UPI payee.
    other_names: ClassVar[dict[str, str]] = {
        "UPI_MERCHANT_ID": "upi_payee_vpa",
        "UPI_MERCHANT_NAME": "upi_payee_name",
    }

    razorpay_key_id: str | None = None
    razorpay_key_secret: SecretStr | None = None
    razorpay_webhook_secret: SecretStr | None = None
    # After a rotation Razorpay's retries of older events still carry the old signature.
    razorpay_webhook_secret_previous: SecretStr | None = None
    razorpay_webhook_secret_previous_until: AwareDatetime | None = None
    razorpay_api_base: str | None = Field(default=None, description="for tests: a local fake")

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # As for Razorpay: a rotation can roll out without refusing what was signed before it.
    stripe_webhook_secret_previous: SecretStr | None = None
    stripe_webhook_secret_previous_until: AwareDatetime | None = None
    stripe_api_base: str | None = Field(default=None, description="for tests: a local fake")
    # manual: a paid intent waits, authorized, for an operator's capture or void.
    stripe_capture_method: Literal["automatic", "manual"] = "automatic"

    # UPI is paid to a Razorpay QR code, never straight to a VPA of ours: no payee has a default.
    # The name labels each QR code (required for UPI); the VPA is read but no longer used.
    upi_payee_vpa: str | None = None
    upi_payee_name: str | None = Field(default=None, min_length=1)
    # Each QR code's close_by: Razorpay wants at least 2 minutes ahead and holds it to 2 hours.
    upi_qr_lifetime_seconds: int = Field(default=900, ge=180, le=7200)

    gateway_timeout_seconds: float = Field(default=8.0, gt=0, le=60)
    # JSON rules, first match wins (README, "Routing and failover"); unset: routing.DEFAULT_ROUTES.
    payment_routes: str | None = None
    gateway_breaker_failures: int = Field(default=5, ge=1)
    gateway_breaker_reset_seconds: float = Field(default=30.0, gt=0)
    create_limit_per_window: int = Field(default=5, ge=1)
    create_limit_window_seconds: int = Field(default=900, ge=1)

    reconcile_interval_seconds: float = Field(default=60.0, gt=0)
    reconcile_after_seconds: int = Field(default=900, ge=0)
    reconcile_batch: int = Field(default=100, ge=1, le=1000)
    # A created payment nobody paid for this long is expired by reconciliation (its order freed).
    payment_expiry_seconds: int = Field(default=1800, ge=60)

    def routing_table(self) -> routing.Table:
        return routing.parse(self.payment_routes, LIMITS)

    @model_validator(mode="after")
    def _routes_parse(self) -> Settings:
        self.routing_table()  # a bad table stops start-up with its one line
        return self

    @field_validator("dedupe_window_days")
    @classmethod
    def _outlasts_provider_retries(cls, days: int) -> int:
        if days < PROVIDER_RETRY_DAYS:
            raise ValueError(
                f"must be at least {PROVIDER_RETRY_DAYS}: Stripe retries a webhook for "
                f"{PROVIDER_RETRY_DAYS} days, and a retry older than the window is refused"
            )
        return days
