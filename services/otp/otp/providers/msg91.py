"""MSG91: SendSMS through a DLT-approved flow, sent through the shared client
(`rtmn_shared.providers.msg91`: plain HTTP, MSG91 has no official Python SDK), and its
delivery-report webhook (v2) read into our delivery reports once.

MSG91 does not sign its reports: the `key` in the URL we configured there is the only proof."""

from __future__ import annotations

import hmac
import json
from typing import Any, NotRequired, TypedDict, cast

import aiohttp

from otp.providers import (
    BadReport,
    Channel,
    DeliveryReport,
    Outcome,
    ProviderUnavailable,
    Receipt,
    Sms,
)
from rtmn_shared.providers.msg91 import Msg91Client, Msg91Failed

# MSG91 report status: 1 delivered, 2 failed, 9 NDNC, 16 and 25 rejected, 17 blocked number.
MSG91_OUTCOMES: dict[str, Outcome] = {
    "1": "delivered",
    "2": "failed",
    "9": "failed",
    "16": "failed",
    "17": "failed",
    "25": "failed",
}


class Msg91Sender:
    name = "msg91"
    channels: frozenset[Channel] = frozenset({"sms"})

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        auth_key: str,
        flow_id: str,
        sender_id: str | None,
        code_variable: str,
        timeout_s: float,
        base_url: str = "https://control.msg91.com",
    ) -> None:
        self._client = Msg91Client(
            session, auth_key=auth_key, timeout_s=timeout_s, base_url=base_url
        )
        self._flow_id, self._sender_id = flow_id, sender_id
        self._code_variable = code_variable

    async def send(self, sms: Sms) -> Receipt:
        # Our code travels as a flow variable, so Redis stays the one source of truth for it.
        variables = {self._code_variable: sms.code}
        try:
            request_id = await self._client.flow(
                self._flow_id, sms.phone.e164, variables, sender_id=self._sender_id
            )
        except Msg91Failed as failure:
            raise ProviderUnavailable(self.name, failure.reason) from None
        return Receipt(self.name, request_id)


# -- delivery reports (the webhook posts a form whose `data` is a JSON list of these) ---------


class ReportEntry(TypedDict, total=False):
    status: str  # MSG91_OUTCOMES' keys; others are still pending
    number: str
    date: str


class ReportRequest(TypedDict):
    requestId: str  # the `message` MSG91 answered our send with
    report: list[ReportEntry]
    senderId: NotRequired[str]


def report_key_matches(given: str, key: str) -> bool:
    """The `key` of the report URL against ours, in constant time."""
    return hmac.compare_digest(given.encode(), key.encode())


def delivery_reports(data: str) -> list[DeliveryReport]:
    """Every report in the form's `data`, all read before any acts: bad input changes nothing.
    Raises `BadReport` (400)."""
    try:
        requests: Any = json.loads(data)
    except ValueError:
        raise BadReport(400, "`data` must be the JSON list of reports") from None
    if not isinstance(requests, list):
        raise BadReport(400, "`data` must be the JSON list of reports")
    reports = []
    for request in requests:
        if not isinstance(request, dict) or not isinstance(request.get("requestId"), str):
            raise BadReport(400, "each report needs its requestId")
        entries = request.get("report")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadReport(400, "each request needs its list of reports")
        reports += _reports(cast(ReportRequest, request))
    return reports


def _reports(request: ReportRequest) -> list[DeliveryReport]:
    statuses = [str(entry.get("status", "")) for entry in request["report"]]
    return [
        DeliveryReport(request["requestId"], status, MSG91_OUTCOMES.get(status, "pending"))
        for status in statuses
    ]
