"""Every environment name the suite reads, and the guard that refuses a name it does not.

`make run` gives every service one environment and compose or Kubernetes give each its own
part of it, so a name is known when any service reads it. The list is written out because this
library cannot import the services (and an image holds only one): tests/test_settings_names.py
fails when a service's settings read a name missing here, or when no service reads one here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from rtmn_shared.suite import SERVICES

# Every service's settings fields (upper-cased) and other_names.
SETTINGS: frozenset[str] = frozenset(
    {
        "AMQP_PREFETCH",
        "AMQP_URL",
        "ANALYTICS_BACKOFF_CAP_SECONDS",
        "ANALYTICS_BACKOFF_FIRST_SECONDS",
        "ANALYTICS_FLUSH_SECONDS",
        "ANALYTICS_HTTP_TIMEOUT_SECONDS",
        "ANALYTICS_PREFETCH",
        "ANALYTICS_SEND_ATTEMPTS",
        "ANALYTICS_TRACK_BUFFER",
        "ANALYTICS_TRACK_PER_MINUTE",
        "APP_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_S3_BUCKET",
        "AWS_SECRET_ACCESS_KEY",
        "CAMPAIGN_BATCH_SIZE",
        "CAMPAIGN_THRESHOLD",
        "CASHBACK_CAP_COINS",
        "CASHBACK_CURRENCIES",
        "CASHBACK_PERCENT",
        "CDN_BASE_URL",
        "CREATE_LIMIT_PER_WINDOW",
        "CREATE_LIMIT_WINDOW_SECONDS",
        "DATABASE_URL",
        "DB_MIGRATION_PASSWORD",
        "DB_MIGRATION_USER",
        "DB_PASSWORD",
        "DB_POOL_SIZE",
        "DB_USER",
        "DEDUPE_WINDOW_DAYS",
        "DEEP_LINK_BASE",
        "DEFERRED_SWEEP_SECONDS",
        "DELIVERY_LEASE_SECONDS",
        "DEVICE_MOVE_WITHIN_SECONDS",
        "EMAIL_ORDER_CONFIRMATION_TEMPLATE_ID",
        "EMAIL_WELCOME_TEMPLATE_ID",
        "FCM_ACCESS_TOKEN",
        "FCM_TIMEOUT_SECONDS",
        "FCM_URL",
        "FIREBASE_CLIENT_EMAIL",
        "FIREBASE_CREDENTIALS_FILE",
        "FIREBASE_PRIVATE_KEY",
        "FIREBASE_PROJECT_ID",
        "FIREBASE_TOKEN_URI",
        "GA4_API_SECRET",
        "GA4_BASE_URL",
        "GA4_BATCH_EVENTS",
        "GA4_MEASUREMENT_ID",
        "GA4_SYSTEM_CLIENT_ID",
        "GA4_VALIDATE",
        "GATEWAY_BREAKER_FAILURES",
        "GATEWAY_BREAKER_RESET_SECONDS",
        "GATEWAY_TIMEOUT_SECONDS",
        "GEOCODE_BREAKER_FAILURES",
        "GEOCODE_BREAKER_RESET_S",
        "GEOCODE_COORDINATE_TTL_S",
        "GEOCODE_DEADLINE_S",
        "GEOCODE_MISSES_PER_MINUTE",
        "GEOCODE_NEGATIVE_TTL_S",
        "GEOCODE_RETRY_FIRST_DELAY_S",
        "GEOCODE_SDK_RETRY_TIMEOUT_S",
        "GEOCODE_TIMEOUT_S",
        "GEOCODE_WORKERS",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_MAPS_API_KEY",
        "GOOGLE_MAPS_BASE_URL",
        "GOOGLE_MAPS_QPS",
        "HTTP_HOST",
        "HTTP_PORT",
        "JWT_AUDIENCE",
        "JWT_ISSUER",
        "JWT_JWKS_COOLDOWN_SECONDS",
        "JWT_JWKS_REFRESH_SECONDS",
        "JWT_JWKS_URL",
        "JWT_PUBLIC_KEY",
        "LOG_LEVEL",
        "MAX_BODY_BYTES",
        "MEDIA_LOCAL_DIR",
        "MEDIA_MAX_BYTES",
        "MEDIA_MAX_PIXELS",
        "MEDIA_ORIGINAL_MAX_SIDE",
        "MEDIA_PRESIGN_TTL_S",
        "MEDIA_PUBLIC_URL",
        "MEDIA_QUEUE",
        "MEDIA_QUOTA_BYTES",
        "MEDIA_UPLOADS_IN_FLIGHT",
        "MEDIA_UPLOADS_PER_MINUTE",
        "MEDIA_WORKERS",
        "METRICS_PORT",
        "MIXPANEL_API_SECRET",
        "MIXPANEL_API_URL",
        "MIXPANEL_BATCH_EVENTS",
        "MIXPANEL_PROJECT_ID",
        "MIXPANEL_PROJECT_TOKEN",
        "MIXPANEL_SERVICE_ACCOUNT_SECRET",
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME",
        "MSG91_AUTH_KEY",
        "MSG91_BASE_URL",
        "MSG91_CODE_VARIABLE",
        "MSG91_FLOW_ID",
        "MSG91_SENDER_ID",
        "MSG91_TIMEOUT_S",
        "NOTIFY_MSG91_FLOW_ID",
        "NOTIFY_MSG91_TEXT_VARIABLE",
        "NOTIFY_MSG91_WHATSAPP_LANGUAGE",
        "NOTIFY_MSG91_WHATSAPP_NAMESPACE",
        "NOTIFY_MSG91_WHATSAPP_NUMBER",
        "NOTIFY_MSG91_WHATSAPP_TEMPLATE",
        "NOTIFY_PUBLIC_URL",
        "NOTIFY_TEMPLATES_DIR",
        "NOTIFY_TWILIO_WHATSAPP_CONTENT_SID",
        "OTP_ALLOWED_REGIONS",
        "OTP_ANDROID_APP_HASH",
        "OTP_APP_NAME",
        "OTP_BACKOFF_AFTER",
        "OTP_BACKOFF_MAX_S",
        "OTP_CODE_TTL_S",
        "OTP_COOLDOWN_S",
        "OTP_DAILY_CAP",
        "OTP_HASH_KEY",
        "OTP_HOURLY_CAP",
        "OTP_IP_HOURLY_CAP",
        "OTP_MAX_ATTEMPTS",
        "OTP_MAX_WRONG_PER_CODE",
        "OTP_MSG91_REPORT_KEY",
        "OTP_PUBLIC_URL",
        "OTP_PUMPING_FLOOR",
        "OTP_PUMPING_MIN_SENDS",
        "OTP_PUMPING_PREFIX_DIGITS",
        "OTP_PUMPING_WINDOW_S",
        "OTP_PURPOSES",
        "OTP_SANDBOX_LOG_CODES",
        "OTP_SIGNING_KEY",
        "OTP_SIGNING_PUBLIC_KEY",
        "OTP_TOKEN_ISSUER",
        "OTP_TOKEN_TTL_S",
        "PAYMENT_EXPIRY_SECONDS",
        "PAYMENT_ROUTES",
        "RAZORPAY_API_BASE",
        "RAZORPAY_KEY_ID",
        "RAZORPAY_KEY_SECRET",
        "RAZORPAY_WEBHOOK_SECRET",
        "RAZORPAY_WEBHOOK_SECRET_PREVIOUS",
        "RAZORPAY_WEBHOOK_SECRET_PREVIOUS_UNTIL",
        "RECONCILE_AFTER_SECONDS",
        "RECONCILE_BATCH",
        "RECONCILE_INTERVAL_SECONDS",
        "REDIS_URL",
        "SECRETS_KEYS",
        "SENDGRID_API_KEY",
        "SENDGRID_API_URL",
        "SENDGRID_FROM_EMAIL",
        "SENDGRID_FROM_NAME",
        "SENDGRID_TEMPLATE_ORDER_CONFIRMATION",
        "SENDGRID_TEMPLATE_PAYMENT_FAILED",
        "SENDGRID_TEMPLATE_PAYMENT_REFUNDED",
        "SENDGRID_TEMPLATE_WELCOME",
        "SENDGRID_TIMEOUT_SECONDS",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "SENDGRID_WEBHOOK_TOLERANCE_SECONDS",
        "SERVICE_USER_PREFIX",
        "STRIPE_API_BASE",
        "STRIPE_CAPTURE_METHOD",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_WEBHOOK_SECRET_PREVIOUS",
        "STRIPE_WEBHOOK_SECRET_PREVIOUS_UNTIL",
        "TRUSTED_PROXIES",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_BASE_URL",
        "TWILIO_MESSAGING_SERVICE_SID",
        "TWILIO_PHONE_NUMBER",
        "TWILIO_TIMEOUT_S",
        "TWILIO_VOICE_FROM",
        "TWILIO_WHATSAPP_CONTENT_SID",
        "TWILIO_WHATSAPP_FROM",
        "UNSUBSCRIBE_SECRET",
        "UPI_MERCHANT_ID",
        "UPI_MERCHANT_NAME",
        "UPI_PAYEE_NAME",
        "UPI_PAYEE_VPA",
        "UPI_QR_LIFETIME_SECONDS",
        "WALLET_DEFAULT_TIER",
        "WALLET_TIER_MULTIPLIERS",
    }
)
# Read by `rtmn-db init` and the broker/Redis logins (settings.service_logins), not by fields.
PROVISIONING: frozenset[str] = frozenset(
    {
        "DATABASE_ADMIN_URL",
        "REDIS_ADMIN_URL",
        "RABBITMQ_MANAGEMENT_URL",
        "AMQP_PASSWORD",
        "REDIS_PASSWORD",
        *(
            f"{name.upper()}_{kind}_PASSWORD"
            for name in SERVICES
            for kind in ("DB", "DB_MIGRATION", "AMQP", "REDIS")
        ),
    }
)
# Read from the environment by a provider's SDK inside a service, in a namespace guarded below.
SDKS: frozenset[str] = frozenset(
    {
        "TWILIO_EDGE",  # twilio.rest.Client, which the services give only the account
        "TWILIO_REGION",
        "STRIPE_LOG",  # stripe's own log level
        "AWS_S3_USE_ARN_REGION",  # botocore's S3 configuration
        "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
        "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS",
    }
)
KNOWN: frozenset[str] = SETTINGS | PROVISIONING | SDKS

# The prefixes that are the suite's (or its providers' as the suite names them): a name under
# one of them that no service reads is a mistake. Others' prefixes are never looked at: PATH,
# PG*, OTEL_*, HTTP_PROXY, the AWS SDK's AWS_* (AWS_PROFILE, AWS_ROLE_ARN, ...), GOOGLE_CLOUD_*.
NAMESPACES: tuple[str, ...] = (
    *(f"{name.upper()}_" for name in SERVICES),  # OTP_, WALLET_, <SERVICE>_DB_PASSWORD, ...
    "AMQP_", "DATABASE_", "DB_", "REDIS_", "JWT_", "SECRETS_", "DEDUPE_",
    "RAZORPAY_", "STRIPE_", "UPI_", "PAYMENT_", "RECONCILE_",
    "TWILIO_", "MSG91_", "SMS_",
    "SENDGRID_", "EMAIL_", "FCM_", "FIREBASE_", "PUSH_", "CAMPAIGN_", "DELIVERY_", "DEFERRED_",
    "UNSUBSCRIBE_",
    "AWS_S3_", "S3_", "CDN_", "CLOUDFRONT_",
    "GOOGLE_MAPS_", "GEOCODE_",
    "MIXPANEL_", "GA4_",
    "CASHBACK_",
)  # fmt: skip
# Prefixes of names the services read that are left unguarded: words other software uses too.
UNGUARDED: tuple[str, ...] = (
    "APP_", "AWS_", "CREATE_", "DEEP_", "DEVICE_", "GATEWAY_", "GOOGLE_", "HTTP_", "LOG_",
    "MAX_", "METRICS_", "RABBITMQ_", "SERVICE_", "TRUSTED_",
)  # fmt: skip

# What Kubernetes sets for each Service in the namespace (enableServiceLinks): OTP_SERVICE_HOST,
# PAYMENTS_PORT_8001_TCP_ADDR, ... They fall in our namespaces but are nobody's mistake.
_SERVICE_LINK = re.compile(
    r"_SERVICE_(HOST|PORT(_\w+)?)$|_PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?$"
)


def guarded(name: str) -> bool:
    return name.startswith(NAMESPACES) and not _SERVICE_LINK.search(name)


def unread(environ: Mapping[str, str]) -> list[str]:
    """The names the environment sets (to something) in our namespaces that no service reads."""
    names = {name.upper() for name, value in environ.items() if value}
    return sorted(name for name in names - KNOWN if guarded(name))


def refusal(name: str) -> str:
    near = difflib.get_close_matches(name, KNOWN, n=1)
    hint = f"did you mean {near[0]}?" if near else "see .env.example for the names read"
    return f"{name} is set but no RTMN service reads it: {hint}"
