"""A requested message's plan: the channels it goes on, and the text of its SMS or WhatsApp
message. Pure: no I/O.

Without `fallback` every channel of the request is used; with it, the channels are tried in
order and the next one only when the one before did not reach the user: push with no live
device (`skipped`), a channel the user turned off (`suppressed`), or refused by the provider
(`failed`). A message sent, or held back by quiet hours, ends the plan there. Each channel used
has its own delivery row, so a redelivered request finds each channel's outcome and goes on
exactly where it stopped.
"""

from __future__ import annotations

from rtmn_shared.events.catalogue import NotificationRequested

FALLS_THROUGH = frozenset({"skipped", "suppressed", "failed"})
# Twilio refuses a body over 1600 characters (21617); a text message is kept well inside.
MAX_TEXT = 1000


def channels_of(command: NotificationRequested) -> list[str]:
    """The request's channels, in its order, each once."""
    return list(dict.fromkeys(command.channels))


def falls_through(status: str) -> bool:
    """Whether a fallback plan goes on to its next channel after one that ended so."""
    return status in FALLS_THROUGH


def requested_text(command: NotificationRequested) -> str:
    """What an SMS or WhatsApp message of a request says: its title and message (the words
    `POST /api/notify/send` took from its push template). The one place text is built for those
    channels, to be pointed at locale templates."""
    text = f"{command.title}: {command.message}"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
