"""The services of the suite and the ports DESIGN.md fixes for them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    extensions: tuple[str, ...] = ()

    @property
    def schema(self) -> str:
        return self.name

    @property
    def role(self) -> str:
        """The runtime login: reads and writes the schema's rows, changes none of its objects."""
        return f"rtmn_{self.name}"

    @property
    def owner(self) -> str:
        """The migration login: owns the schema and everything in it."""
        return f"rtmn_{self.name}_owner"


SERVICES: dict[str, ServiceInfo] = {
    info.name: info
    for info in (
        ServiceInfo("payments", 8001),
        ServiceInfo("otp", 8002),
        ServiceInfo("notify", 8003),
        ServiceInfo("media", 8004),
        ServiceInfo("geo", 8005, extensions=("postgis",)),
        ServiceInfo("wallet", 8006),
        ServiceInfo("analytics", 8007),
    )
}

EXCHANGE = "rtmn.events"
UNROUTED_EXCHANGE = "rtmn.unrouted"
UNROUTED_QUEUE = "rtmn.unrouted"

# Who emits each event type (DESIGN.md §3); user.registered comes from outside the suite,
# order.placed from the commerce side.
PRODUCERS: dict[str, str] = {
    "payment.success": "payments",
    "payment.failed": "payments",
    "payment.refunded": "payments",
    "payment.disputed": "payments",
    "wallet.credited": "wallet",
    "wallet.debited": "wallet",
    "wallet.cashback_quoted": "wallet",
    "otp.verified": "otp",
    "media.uploaded": "media",
    "notification.sent": "notify",
    "notification.failed": "notify",
    "notification.requested": "notify (a command: other services ask through its API)",
    "order.placed": "commerce (outside the suite)",
}
