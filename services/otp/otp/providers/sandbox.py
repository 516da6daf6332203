"""The sender used when no SMS provider is configured: it sends nothing and says so."""

from __future__ import annotations

import logging
import uuid

from otp.providers import CHANNELS, Receipt, Sms

log = logging.getLogger(__name__)


class SandboxSender:
    name = "sandbox"
    channels = frozenset(CHANNELS)

    def __init__(self, *, log_codes: bool = False) -> None:
        self._log_codes = log_codes
        self.sent = 0
        log.warning("SMS sandbox: no Twilio or MSG91 credentials; no SMS will be sent")
        if log_codes:
            log.warning("OTP_SANDBOX_LOG_CODES is on: codes are logged; never in production")

    async def send(self, sms: Sms) -> Receipt:
        self.sent += 1
        if self._log_codes:
            log.warning("sandbox %s to %s: code %s", sms.channel, sms.phone.masked, sms.code)
        else:
            log.info("sandbox %s to %s not sent (sandbox)", sms.channel, sms.phone.masked)
        return Receipt(self.name, f"sandbox-{uuid.uuid4().hex}")
