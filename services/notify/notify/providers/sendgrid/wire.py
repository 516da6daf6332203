"""What SendGrid's Event Webhook posts (the fields we read) and each event in our words, once.

A batch is a JSON array of events; each becomes an `EmailEvent` through `email_event` alone.
Read as sent: each field is converted where it is read, and a field of the wrong type counts as
absent.
"""

from __future__ import annotations

import uuid
from typing import TypedDict

from notify.domain import EmailEvent

# SendGrid's delivery events, as the email statuses they move a delivery to.
STATUSES = {
    "processed": "sent",
    "delivered": "delivered",
    "bounce": "bounced",
    "blocked": "bounced",
    "dropped": "dropped",
}
# Engagement events by which the user asks us to stop mailing them (that category).
OPT_OUTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})


class Event(TypedDict, total=False):
    # processed, delivered, bounce (type bounce or blocked), dropped, deferred, open, click,
    # unsubscribe, group_unsubscribe, spamreport, ...
    event: str
    email: str
    timestamp: int
    sg_message_id: str  # our X-Message-Id, then ".filter..." parts
    type: str  # of a bounce: "bounce" (hard) or "blocked"
    reason: str
    bounce_classification: str
    notification_id: str  # ours, from custom_args: the delivery's id


def email_event(event: Event) -> EmailEvent:
    """One event of a batch as ours."""
    kind = str(event.get("event"))
    # SendGrid's X-Message-Id is the part of sg_message_id before the first dot.
    message_id = str(event.get("sg_message_id") or "").split(".", 1)[0] or None
    email = event.get("email")
    return EmailEvent(
        kind=kind,
        delivery_id=_uuid(event.get("notification_id")),
        message_id=message_id,
        status=STATUSES.get(kind),
        opt_out=kind in OPT_OUTS,
        suppression=suppression_of(event),
        email=email if isinstance(email, str) and email else None,
    )


def suppression_of(event: Event) -> str | None:
    """Why a SendGrid event means the address must not be mailed again, or None: a hard bounce
    (event bounce of type bounce; type blocked is a refusal of us, not of the address) or a
    drop (SendGrid itself will not mail it)."""
    kind = event.get("event")
    if kind == "bounce" and event.get("type", "bounce") == "bounce":
        detail = event.get("bounce_classification") or event.get("reason") or "hard bounce"
        return f"bounce: {detail}"[:500]
    if kind == "dropped":
        return f"dropped: {event.get('reason') or 'no reason given'}"[:500]
    return None


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
