"""`make docs`: the AsyncAPI document of every event and each service's OpenAPI, under docs/.

Each service's OpenAPI comes from its running app (its routes and pydantic models), so the
database and broker of `make run` must answer; the AsyncAPI comes from the event catalogue alone.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path

from rtmn_shared.events.asyncapi import document
from rtmn_shared.service import Service
from rtmn_shared.suite import PRODUCERS, SERVICES
from rtmn_shared.testing.running import running

DOCS = Path(__file__).resolve().parents[1] / "docs"


async def openapi(service: Service[object]) -> dict[str, object]:  # type: ignore[type-var]
    async with running(service, relay=False, consumers=False) as svc:
        response = await svc.client.get("/openapi.json")
        return await response.json()  # type: ignore[no-any-return]


async def main() -> None:
    (DOCS / "openapi").mkdir(parents=True, exist_ok=True)
    (DOCS / "asyncapi.json").write_text(json.dumps(document(PRODUCERS), indent=2) + "\n")
    print("docs/asyncapi.json")
    for name in SERVICES:
        module = importlib.import_module(f"{name}.app")
        spec = await openapi(module.SERVICE)
        (DOCS / "openapi" / f"{name}.json").write_text(json.dumps(spec, indent=2) + "\n")
        print(f"docs/openapi/{name}.json")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
