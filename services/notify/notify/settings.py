"""Notify's settings: the common ones plus each provider's, under the seed guide's names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import DirectoryPath, Field, FilePath, HttpUrl, SecretStr, field_validator

from rtmn_shared.settings import CommonSettings

# What a Google service-account JSON key file gives, field by field.
_SERVICE_ACCOUNT = {
    "firebase_project_id": "project_id",
    "firebase_client_email": "client_email",
    "firebase_private_key": "private_key",
    "firebase_token_uri": "token_uri",
}


class Settings(CommonSettings):
    # The seed guide's template names, and Google's standard name for a credentials file.
    other_names: ClassVar[dict[str, str]] = {
        "EMAIL_WELCOME_TEMPLATE_ID": "sendgrid_template_welcome",
        "EMAIL_ORDER_CONFIRMATION_TEMPLATE_ID": "sendgrid_template_order_confirmation",
        "GOOGLE_APPLICATION_CREDENTIALS": "firebase_credentials_file",
    }

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
    sendgrid_template_payment_failed: str = "d-paymentfailed"
    sendgrid_template_payment_refunded: str = "d-paymentrefunded"
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
    # Or the service account's JSON key file, as the seed gave it (GOOGLE_APPLICATION_CREDENTIALS
    # is read too): it fills the values above.
    firebase_credentials_file: FilePath | None = None
    fcm_access_token: SecretStr | None = None
    fcm_url: str | None = Field(
        default=None, description="messages:send URL with {0} for the project; for fakes"
    )
    fcm_timeout_seconds: int = Field(default=10, ge=1, le=120)

    # SMS and WhatsApp: MSG91 first, Twilio as its fallback (the accounts the OTP service uses,
    # under the same names); neither configured means the sandbox text sender.
    msg91_auth_key: SecretStr | None = None
    msg91_sender_id: str | None = None
    msg91_base_url: str = "https://control.msg91.com"
    msg91_timeout_s: float = Field(default=5.0, gt=0, le=30)
    # notify's own DLT-approved flow (not OTP's) and the flow variable that carries the text.
    notify_msg91_flow_id: str | None = None
    notify_msg91_text_variable: str = "message"
    # WhatsApp through MSG91: the integrated number (digits) and an approved template whose one
    # body variable is the text.
    notify_msg91_whatsapp_number: str | None = Field(default=None, pattern=r"^[1-9]\d{6,14}$")
    notify_msg91_whatsapp_template: str | None = None
    notify_msg91_whatsapp_namespace: str | None = None
    notify_msg91_whatsapp_language: str = "en"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = Field(default=None, description="tests: a contract fake")
    twilio_timeout_s: float = Field(default=5.0, gt=0, le=30)
    twilio_whatsapp_from: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    # notify's own approved Content template (not OTP's code template); `{{1}}` is the text.
    notify_twilio_whatsapp_content_sid: str | None = Field(
        default=None, pattern=r"^HX[0-9a-fA-F]{32}$"
    )

    # A device token registered to another user moves to the caller only if the caller's token
    # shows a sign-in (auth_time, else iat) at most this long ago; older answers 409.
    device_move_within_seconds: int = Field(default=600, ge=30, le=86_400)

    # How long a claimed delivery is ours before another worker may take it over.
    delivery_lease_seconds: int = Field(default=120, ge=5)
    # Requests for more users than this are campaigns: fanned out in batches on their own queue.
    campaign_threshold: int = Field(default=20, ge=1)
    campaign_batch_size: int = Field(default=500, ge=1, le=500)

    # Signs the one-click unsubscribe links (RFC 8058) of promotional mail; unset: no link.
    unsubscribe_secret: SecretStr | None = Field(default=None, min_length=32)
    # Where the gateway serves notify's public routes, for links in mail.
    notify_public_url: HttpUrl = HttpUrl("http://localhost:8080")
    # How often sends held back by quiet hours are looked at, to go out once their window opens.
    deferred_sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The push and SMS texts per locale (<locale>.toml files); unset: those notify ships.
    notify_templates_dir: DirectoryPath | None = None

    @field_validator("firebase_private_key")
    @classmethod
    def _unescape_pem(cls, value: SecretStr | None) -> SecretStr | None:
        # A PEM in a one-line .env value carries its newlines as "\n".
        if value is None:
            return None
        return SecretStr(value.get_secret_value().replace("\\n", "\n"))

    @classmethod
    def derive(cls, values: dict[str, Any]) -> dict[str, Any]:
        path = values.get("firebase_credentials_file")
        if path is None:
            return values
        account = _service_account(Path(str(path)))
        for field, key in _SERVICE_ACCOUNT.items():
            given = values.get(field)
            if given is None:
                values[field] = account[key]
            elif field != "firebase_project_id" or str(given) != account[key]:
                raise ValueError(
                    f"{field.upper()} is set beside FIREBASE_CREDENTIALS_FILE, whose "
                    f"{key} is the one read: set one"
                )
        return values


def _service_account(path: Path) -> dict[str, str]:
    """The service account's fields from its key file; what is wrong is said, never the key."""
    where = f"FIREBASE_CREDENTIALS_FILE ({path})"
    try:
        account = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{where} cannot be read: {error.strerror}") from None
    except ValueError:
        raise ValueError(f"{where} is not JSON") from None
    if not isinstance(account, dict) or account.get("type") != "service_account":
        raise ValueError(f"{where} is not a service-account key file")
    account.setdefault("token_uri", "https://oauth2.googleapis.com/token")
    missing = [k for k in _SERVICE_ACCOUNT.values() if not isinstance(account.get(k), str)]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    return {k: account[k] for k in _SERVICE_ACCOUNT.values()}
