"""What SendGrid's Mail Send rejects with 400, and the field it names."""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
# Real dynamic ids are d- and 32 hex digits, but the published examples use longer
# placeholders, so only the shape is checked: d-<alphanumerics> or a legacy GUID.
TEMPLATE_ID = re.compile(r"^(d-[0-9A-Za-z]+|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$")
MAX_BYTES = 30 * 1024 * 1024  # SendGrid's limit on a whole message, attachments included

MESSAGES = {
    "personalizations": "The personalizations field is required and must have at least one "
    "personalization.",
    "too_many": "The personalizations field can have at most 1000 items.",
    "to": "The to array is required for all personalization objects, and must have at least "
    "one email object with a valid email address.",
    "address": "Does not contain a valid address.",
    "from": "The from object must be provided for every email send. It is an object that "
    "requires the email parameter, but may also contain a name parameter.",
    "from_address": "The from email does not contain a valid address.",
    "template_id": "The template_id must be a valid GUID, you provided '{}'.",
    "subject": "The subject is required. You can get around this requirement if you use a "
    "template with a subject defined or if every personalization has a subject defined.",
    "content": "Unless a valid template_id is provided, the content parameter is required. "
    "There must be at least one defined content block.",
    "object": "Invalid type. Expected: object.",
    "reserved": "The header {} is reserved and cannot be set.",
    "string": "Invalid type. Expected: string.",
}


class Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate(mail: Any) -> dict[str, Any]:
    if not isinstance(mail, dict):
        raise Invalid("null", "Bad Request")
    personalizations = mail.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise Invalid("personalizations", MESSAGES["personalizations"])
    if len(personalizations) > 1000:
        raise Invalid("personalizations", MESSAGES["too_many"])
    for i, personalization in enumerate(personalizations):
        _personalization(i, personalization)
    sender = mail.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        raise Invalid("from.email", MESSAGES["from"])
    if not EMAIL.match(str(sender["email"])):
        raise Invalid("from.email", MESSAGES["from_address"])
    template_id = mail.get("template_id")
    if template_id is not None and not TEMPLATE_ID.match(str(template_id)):
        raise Invalid("template_id", MESSAGES["template_id"].format(template_id))
    if template_id is None:
        if not mail.get("subject") and not all(p.get("subject") for p in personalizations):
            raise Invalid("subject", MESSAGES["subject"])
        if not mail.get("content"):
            raise Invalid("content", MESSAGES["content"])
    _strings(mail.get("custom_args", {}), "custom_args")
    _headers(mail.get("headers", {}), "headers")
    return mail


def _personalization(i: int, personalization: Any) -> None:
    to = personalization.get("to") if isinstance(personalization, dict) else None
    if not isinstance(to, list) or not to:
        raise Invalid(f"personalizations.{i}.to", MESSAGES["to"])
    for j, address in enumerate(to):
        if not isinstance(address, dict) or not EMAIL.match(str(address.get("email", ""))):
            raise Invalid(f"personalizations.{i}.to.{j}.email", MESSAGES["address"])
    _strings(personalization.get("custom_args", {}), f"personalizations.{i}.custom_args")
    _headers(personalization.get("headers", {}), f"personalizations.{i}.headers")
    if not isinstance(personalization.get("dynamic_template_data", {}), dict):
        raise Invalid(f"personalizations.{i}.dynamic_template_data", MESSAGES["object"])


def _strings(args: Any, field: str) -> None:
    # custom_args reach the event webhook as strings only; SendGrid refuses anything else.
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        raise Invalid(field, MESSAGES["string"])


# Headers SendGrid sets itself; a mail naming one is refused (Mail Send v3, `headers`).
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)


def _headers(headers: Any, field: str) -> None:
    """`headers` (the mail's, or one personalization's): string values, no reserved name."""
    _strings(headers, field)
    for name in headers:
        if name.lower() in RESERVED_HEADERS:
            raise Invalid(field, MESSAGES["reserved"].format(name))
