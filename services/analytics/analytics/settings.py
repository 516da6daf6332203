"""The analytics service's settings: the common ones plus each sink's credentials and batching."""

from __future__ import annotations

from pydantic import Field, HttpUrl, SecretStr

from rtmn_shared.settings import CommonSettings


class AnalyticsSettings(CommonSettings):
    # Mixpanel /import: a project secret, or a service account with its project id.
    mixpanel_api_secret: SecretStr | None = None
    mixpanel_service_account_username: str | None = None
    mixpanel_service_account_secret: SecretStr | None = None
    mixpanel_project_id: str | None = None
    mixpanel_project_token: SecretStr | None = None
    mixpanel_api_url: HttpUrl = HttpUrl("https://api.mixpanel.com")
    mixpanel_batch_events: int = Field(default=2000, ge=1, le=2000)

    ga4_measurement_id: str | None = None
    ga4_api_secret: SecretStr | None = None
    ga4_base_url: HttpUrl = HttpUrl("https://www.google-analytics.com")
    # Check mode: posts to /debug/mp/collect (nothing is collected) and logs what GA4 says.
    ga4_validate: bool = False
    ga4_batch_events: int = Field(default=500, ge=1, le=2000)
    # GA4 needs a client_id on every request; events that belong to no user use this one.
    ga4_system_client_id: str = Field(default="rtmn-server", min_length=1, max_length=100)

    analytics_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    # Unacknowledged messages per sink queue: at least two batches, so one fills while one sends.
    analytics_prefetch: int = Field(default=4000, ge=1, le=65535)
    analytics_http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # In-process attempts on 429/5xx/timeouts before the messages go back to the broker's retry.
    analytics_send_attempts: int = Field(default=5, ge=1, le=20)
    analytics_backoff_first_seconds: float = Field(default=0.5, gt=0, le=60)
    analytics_backoff_cap_seconds: float = Field(default=8.0, gt=0, le=300)
    # Client events from POST /api/analytics/track, per user and minute.
    analytics_track_per_minute: int = Field(default=600, ge=1)
    analytics_track_buffer: int = Field(default=10_000, ge=1)

    @property
    def mixpanel_live(self) -> bool:
        service_account = (
            self.mixpanel_service_account_username is not None
            and self.mixpanel_service_account_secret is not None
            and self.mixpanel_project_id is not None
        )
        return self.mixpanel_api_secret is not None or service_account

    @property
    def ga4_live(self) -> bool:
        return self.ga4_measurement_id is not None and self.ga4_api_secret is not None
