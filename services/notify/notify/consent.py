"""What a user may be sent: categories, channels, and the signed one-click unsubscribe link.
Pure: no I/O. The defaults themselves live in the `category_channels` table, where the claim
statement reads them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Category = Literal["transactional", "account", "wallet", "promotional"]
Channel = Literal["email", "push", "sms", "whatsapp"]
DEFAULT_TIME_ZONE = "Asia/Kolkata"

# RFC 8058: the URI in List-Unsubscribe is POSTed with exactly this form body.
ONE_CLICK = "List-Unsubscribe=One-Click"


def known_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Unsubscription:
    user_id: str
    category: str


class UnsubscribeLinks:
    """One-click unsubscribe links (RFC 8058), signed with HMAC-SHA256 so they need no login and
    cannot be made for someone else. No key: no links, and promotional mail goes without."""

    def __init__(self, secret: bytes | None, base_url: str) -> None:
        self._secret = secret
        self._base = base_url.rstrip("/") + "/api/notify/unsubscribe/"

    @property
    def configured(self) -> bool:
        return self._secret is not None

    def url(self, user_id: str, category: str) -> str:
        payload = _b64(f"{category}\n{user_id}".encode())
        return f"{self._base}{payload}.{self._sign(payload)}"

    def headers(self, user_id: str, category: str) -> dict[str, str]:
        if self._secret is None:
            return {}
        return {
            "List-Unsubscribe": f"<{self.url(user_id, category)}>",
            "List-Unsubscribe-Post": ONE_CLICK,
        }

    def headers_for(self, user_id: str, category: str) -> dict[str, str] | None:
        """The headers a mail of `category` carries: promotional mail the one-click link."""
        return self.headers(user_id, category) if category == "promotional" else None

    def read(self, token: str) -> Unsubscription | None:
        """The user and category a token was signed for; None if it was not signed by us."""
        payload, _, signature = token.partition(".")
        if self._secret is None or not hmac.compare_digest(
            signature.encode(), self._sign(payload).encode()
        ):
            return None
        try:
            category, _, user_id = _unb64(payload).decode().partition("\n")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return Unsubscription(user_id, category) if user_id and category else None

    def _sign(self, payload: str) -> str:
        assert self._secret is not None
        mac = hmac.new(self._secret, b"unsubscribe.v1." + payload.encode(), hashlib.sha256)
        return _b64(mac.digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
