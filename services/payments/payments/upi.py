"""UPI deep links (`upi://pay?...`) and their QR codes. The link is never proof of payment."""

from __future__ import annotations

import io
import re
from typing import Literal
from urllib.parse import quote

import segno

from rtmn_shared.money import Money

QrFormat = Literal["svg", "png"]
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
TR_MAX = 35


def transaction_ref(payment_id: str) -> str:
    """`tr`: alphanumeric, at most 35 characters; our payment id with anything else dropped."""
    return _NOT_ALNUM.sub("", payment_id)[:TR_MAX]


def pay_link(*, vpa: str, payee: str, payment_id: str, note: str, amount: Money) -> str:
    if amount.currency != "INR":
        raise ValueError("UPI takes INR only")
    params = [
        ("pa", vpa),
        ("pn", payee),
        ("tr", transaction_ref(payment_id)),
        ("tn", note),
        ("am", amount.amount_string()),
        ("cu", "INR"),
    ]
    # quote() writes a space as %20 (UPI apps do not all read "+"); "@" stays readable in pa.
    return "upi://pay?" + "&".join(f"{k}={quote(v, safe='@')}" for k, v in params)


def qr_code(link: str, kind: QrFormat) -> bytes:
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind=kind, scale=6, border=2)
    return out.getvalue()


CONTENT_TYPES: dict[QrFormat, str] = {"svg": "image/svg+xml", "png": "image/png"}
