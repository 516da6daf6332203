"""Notify's settings: the common ones plus each provider's, under the seed guide's names."""

from __future__ import annotations

from pydantic import Field, HttpUrl, SecretStr, field_validator

from rtmn_shared.settings import CommonSettings


class Settings(CommonSettings):
    app_url: HttpUrl = HttpUrl("http://localhost:3000")
    # Where a push's deep link points in the app, e.g. rezapp://orders/<id>.
    deep_link_base: str = "rezapp://"

    # SendGrid: without an API key the sandbox sender records mail instead.
    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_url: HttpUrl = HttpUrl("https://api.sendgrid.com")
    sendgrid_from_email: str = "no-reply@rez.money"
    sendgrid_from_name: str = "REZ"
    sendgrid_template_welcome: str = "d-welcome"
    sendgrid_template_order_confirmation: str = "d-orderconfirmation"
    sendgrid_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Base64 DER public key from SendGrid's Event Webhook settings; unset rejects every event.
    sendgrid_webhook_public_key: str | None = None
    sendgrid_webhook_tolerance_seconds: int = Field(default=600, ge=0)

    # FCM: a service account (the seed's three FIREBASE_* values) or, for a local fake, a
    # static access token; neither means the sandbox push sender.
    firebase_project_id: str | None = None
    firebase_client_email: str | None = None
    firebase_private_key: SecretStr | None = None
    firebase_token_uri: HttpUrl = HttpUrl("https://oauth2.googleapis.com/token")
    fcm_access_token: SecretStr | None = None
    fcm_url: str | None = Field(
        default=None, description="messages:send URL with {0} for the project; for fakes"
    )
    fcm_timeout_seconds: int = Field(default=10, ge=1, le=120)

    # A device token registered to another user moves to the caller only if the caller's token
    # shows a sign-in (auth_time, else iat) at most this long ago; older answers 409.
    device_move_within_seconds: int = Field(default=600, ge=30, le=86_400)

    # How long a claimed delivery is ours before another worker may take it over.
    delivery_lease_seconds: int = Field(default=120, ge=5)
    # Requests for more users than this are campaigns: fanned out in batches on their own queue.
    campaign_threshold: int = Field(default=20, ge=1)
    campaign_batch_size: int = Field(default=500, ge=1, le=500)

    @field_validator("firebase_private_key")
    @classmethod
    def _unescape_pem(cls, value: SecretStr | None) -> SecretStr | None:
        # A PEM in a one-line .env value carries its newlines as "\n".
        if value is None:
            return None
        return SecretStr(value.get_secret_value().replace("\\n", "\n"))
