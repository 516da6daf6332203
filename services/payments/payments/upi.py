"""A UPI payment's QR code as the client gets it: the gateway's code, and our QR of its link.

The code is Razorpay's (single use, fixed amount, closing at `close_by`), so Razorpay receives
the money and confirms it; a UPI app's "success" proves nothing. Where Razorpay gives the
`upi://pay` link the code encodes (an account's "image content"), we serve it and draw it too.
"""

from __future__ import annotations

import io
from typing import Literal

import segno

from payments.providers.gateway import UpiQr
from payments.schemas import UpiLink

QrFormat = Literal["svg", "png"]


def view(payment_id: str, qr: UpiQr) -> UpiLink:
    base = f"/api/payments/{payment_id}/upi"
    drawn = qr.link is not None
    return UpiLink(
        link=qr.link,
        qr_svg=f"{base}?format=svg" if drawn else None,
        qr_png=f"{base}?format=png" if drawn else None,
        image_url=qr.image_url,
        qr_code_id=qr.qr_code_id,
        close_by=qr.close_by,
        status=qr.status,
    )


def qr_code(link: str, kind: QrFormat) -> bytes:
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind=kind, scale=6, border=2)
    return out.getvalue()


CONTENT_TYPES: dict[QrFormat, str] = {"svg": "image/svg+xml", "png": "image/png"}
