"""Requests built from a service's own OpenAPI document: every operation with a body, query and
path that pass validation, so that a refusal can only come from what a test changed."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from security_kit import minimal

from rtmn_shared.cli.token import generate_keypair, mint
from rtmn_shared.testing.infra import Suite

# A 1x1 PNG: a real image, so an upload is refused for its token, not for its bytes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def secured(self) -> bool:
        return bool(self.spec.get("security"))

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes the document says the operation takes (any one of them will do)."""
        return frozenset(s for need in self.spec.get("security", []) for s in need["bearer"])


@dataclass(frozen=True)
class Prepared:
    """One request, ready to send; `json_body` xor `form` carries the body."""

    method: str
    url: str
    query: dict[str, str]
    json_body: Any = None
    form: dict[str, Any] | None = None

    def with_query(self, name: str, value: str) -> Prepared:
        return replace(self, query={**self.query, name: value})


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            yield Operation(method.upper(), path, spec)


def prepare(operation: Operation, document: dict[str, Any], path_value: str = "") -> Prepared:
    components = document["components"]["schemas"]
    url = operation.path
    for parameter in operation.spec.get("parameters", []):
        if parameter["in"] == "path":
            value = path_value or str(uuid.uuid4())
            url = url.replace("{" + parameter["name"] + "}", value)
    query = {
        p["name"]: str(minimal(p["schema"], components))
        for p in operation.spec.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    content = operation.spec.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = minimal(content["application/json"]["schema"], components)
        return Prepared(operation.method, url, query, json_body=body)
    if "multipart/form-data" in content:
        return Prepared(operation.method, url, query, form={"image": PNG})
    return Prepared(operation.method, url, query)


async def send(
    client: Any, request: Prepared, headers: dict[str, str]
) -> tuple[int, str, bytes, dict[str, str]]:
    data: aiohttp.FormData | None = None
    if request.form is not None:
        data = aiohttp.FormData()
        for name, value in request.form.items():
            if isinstance(value, bytes):
                data.add_field(name, value, filename=f"{name}.png", content_type="image/png")
            else:
                data.add_field(name, value)
    response = await client.request(
        request.method,
        request.url,
        params=request.query,
        json=request.json_body if request.json_body is not None else None,
        data=data,
        headers=headers,
        allow_redirects=False,
    )
    body = await response.read()
    return response.status, response.headers.get("Content-Type", ""), body, dict(response.headers)


def every_scope(document: dict[str, Any]) -> str:
    """A scope claim with every scope the document names: a refusal is then not the scope's."""
    return " ".join(sorted(set().union(*(op.scopes for op in operations(document)))))


def bad_tokens(suite: Suite, scopes: str = "") -> dict[str, dict[str, str]]:
    """Every way a bearer token can be wrong, by name; each must get a 401, whatever `scopes`
    it carries."""
    good = suite.token("intruder", scopes)
    head, payload, signature = good.split(".")
    middle = len(signature) // 2  # not the last character: its low bits may be padding
    flipped = "A" if signature[middle] != "A" else "B"
    tampered = f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    other_private, _ = generate_keypair()
    unsigned_head = _b64({"alg": "none", "typ": "JWT"})
    return {
        "no token": {},
        "not a bearer": {"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"},
        "expired": {"Authorization": f"Bearer {suite.token('intruder', scopes, -60)}"},
        "tampered": {"Authorization": f"Bearer {tampered}"},
        "another key": {"Authorization": f"Bearer {mint(other_private, 'intruder', scopes)}"},
        "alg none": {"Authorization": f"Bearer {unsigned_head}.{payload}."},
        **{
            case: {
                "Authorization": f"Bearer {mint(suite.private_key, 'intruder', scopes, **claims)}"
            }  # type: ignore[arg-type]
            for case, claims in WRONG_CLAIMS.items()
        },
    }


# Signed by the right key, for someone else: each is refused on its claims alone.
WRONG_CLAIMS: dict[str, dict[str, str | None]] = {
    "no issuer": {"issuer": None},
    "another issuer": {"issuer": "https://id.elsewhere.example"},
    "no audience": {"audience": None},
    "another audience": {"audience": "another-api"},
}


def _b64(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


NUL = "a\x00b"


def nul_variants(operation: Operation, document: dict[str, Any]) -> Iterator[tuple[str, Prepared]]:
    """The operation's valid request with a NUL character in one field at a time."""
    components = document["components"]["schemas"]
    request = prepare(operation, document)
    if any(p["in"] == "path" for p in operation.spec.get("parameters", [])):
        yield "path", prepare(operation, document, path_value="a%00b")
    for parameter in operation.spec.get("parameters", []):
        if parameter["in"] == "query":
            yield f"?{parameter['name']}", request.with_query(parameter["name"], NUL)
    if isinstance(request.json_body, dict):
        schema = operation.spec["requestBody"]["content"]["application/json"]["schema"]
        schema = components[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
        for name in schema.get("properties", {}):
            yield f"body.{name}", replace(request, json_body={**request.json_body, name: NUL})
    if request.form is not None:
        yield "form folder", replace(request, form={**request.form, "folder": NUL})
