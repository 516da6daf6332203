"""The CloudEvents 1.0 envelope every event travels in (structured JSON mode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rtmn_shared.tracing import event_traceparent

CONTENT_TYPE = "application/cloudevents+json"


class EventData(BaseModel):
    """The `data` of one event type. Consumers ignore fields they do not know yet."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: ClassVar[str]
    # The field whose value becomes the envelope's subject (ordering is kept per subject).
    subject_field: ClassVar[str | None] = None

    def subject(self) -> str | None:
        if self.subject_field is None:
            return None
        return str(getattr(self, self.subject_field))


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    traceparent: str | None = None
    data: dict[str, Any]

    @classmethod
    def of(
        cls,
        data: EventData,
        *,
        source: str,
        event_id: uuid.UUID | None = None,
        parent: str | None = None,
    ) -> CloudEvent:
        """Wraps event data, carrying the current trace forward as a child span, or the trace of
        `parent` (a traceparent) when given."""
        event_id, subject = event_id or uuid.uuid4(), data.subject()
        return cls(
            id=event_id,
            # Set, not defaulted: consumers deduplicate by the day of a time the producer gave.
            time=datetime.now(UTC),
            source=source,
            type=data.type,
            subject=subject,
            traceparent=event_traceparent(data.type, event_id, subject, parent),
            data=data.model_dump(mode="json"),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))
