"""The AsyncAPI 3 document of the suite, generated from the event catalogue."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from rtmn_shared.events.catalogue import CATALOGUE
from rtmn_shared.events.envelope import CONTENT_TYPE
from rtmn_shared.suite import EXCHANGE

REF = "#/components/schemas/{model}"


def document(producers: dict[str, str], version: str = "0.1.0") -> dict[str, Any]:
    """`producers` maps an event type to the service that emits it (others are consumed only)."""
    models = list(CATALOGUE.values())
    keyed, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in models:
        name = model.__name__
        data_schema = keyed[(model, "validation")]
        messages[name] = {
            "name": model.type,
            "title": name,
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name,
            "contentType": CONTENT_TYPE,
            "payload": _envelope(model.type, data_schema),
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": "0.3.0"}},
        }
        channel = model.type.replace(".", "-")
        channels[channel] = {
            "address": model.type,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": EXCHANGE, "type": "topic", "durable": True, "vhost": "/"},
                    "bindingVersion": "0.3.0",
                }
            },
        }
        producer = producers.get(model.type)
        operations[f"publish-{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"emitted by {producer}" if producer else "emitted outside the suite",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "RTMN events",
            "version": version,
            "description": "CloudEvents 1.0 (structured JSON) on the rtmn.events topic "
            "exchange; routing key = event type; money in minor units.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": top.get("$defs", {})},
    }


def _envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid"},
            "source": {"type": "string", "examples": ["rtmn/payments"]},
            "type": {"const": event_type},
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "traceparent": {"type": "string"},
            "data": data,
        },
    }
