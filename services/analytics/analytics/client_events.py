"""The limits a client's own event must meet before it joins the domain events on their way out.

The same rules as the server mapping, written as checks because client properties are free-form:
names GA4 and Mixpanel both accept, at most 25 properties, short scalar values, and nothing that
looks like an email, a phone number or a token, whatever the property is called.
"""

from __future__ import annotations

import math
import re

from analytics.mapping import SERVER_EVENT_NAMES

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_PROPERTIES = 25
MAX_STRING = 100  # GA4 truncates longer parameter values
MAX_INTEGER = 2**53  # beyond this JSON numbers lose precision in JavaScript-based tools

# GA4 drops events and parameters with these names and prefixes; the server's names are ours.
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag")
RESERVED_NAMES = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
        "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_remove",
        "app_store_refund", "app_store_subscription_cancel", "app_store_subscription_convert",
        "app_store_subscription_renew", "app_update", "app_upgrade", "dynamic_link_app_open",
        "dynamic_link_app_update", "dynamic_link_first_open", "error", "first_open",
        "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
        "notification_open", "notification_receive", "os_update", "session_start",
        "session_start_with_rollout", "user_engagement",
    }
)  # fmt: skip
# Property names that announce personal data or secrets: anywhere in the name, or as one word.
DENIED_IN_NAME = (
    "email", "phone", "token", "password", "passwd", "secret", "aadhaar", "msisdn",
    "first_name", "last_name", "full_name", "user_name", "username",
)  # fmt: skip
DENIED_WORDS = frozenset(
    {"mail", "mobile", "otp", "card", "cvv", "pan", "address", "ssn", "iban", "vpa", "upi",
     "dob", "birthday", "pin", "key", "auth"}
)  # fmt: skip

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?\d(?:[\s().-]?\d){9,}")
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}")
# An id, not a secret: UUIDs are how clients name products and screens.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Long unbroken runs of letters and digits: API keys, session cookies, bearer tokens.
_OPAQUE = re.compile(r"(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{24,}")

Property = str | int | float | bool


def event_name_problem(name: str) -> str | None:
    if not NAME.match(name):
        return "must be 1-40 lower-case letters, digits or underscores, starting with a letter"
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        return "is reserved by Google Analytics"
    if name in SERVER_EVENT_NAMES:
        return "is reserved for events the services send themselves"
    return None


def property_problem(name: str, value: Property) -> str | None:
    if not NAME.match(name) or name.startswith(RESERVED_PREFIXES):
        return "names must be 1-40 lower-case letters, digits or underscores"
    if any(word in name for word in DENIED_IN_NAME) or DENIED_WORDS.intersection(name.split("_")):
        return "may carry personal data or a secret, so it is not forwarded"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_INTEGER else "integers are limited to ±2^53"
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    return _string_problem(value)


def _string_problem(value: str) -> str | None:
    if len(value) > MAX_STRING:
        return f"strings are limited to {MAX_STRING} characters"
    if _EMAIL.search(value):
        return "looks like an email address"
    if _PHONE.search(value):
        return "looks like a phone number"
    if _JWT.search(value) or (_OPAQUE.search(value) and not _UUID.fullmatch(value)):
        return "looks like a token or key"
    return None
