"""Another collector that follows ooni/spec bk-003 to the letter, unlike ours: our uploads must
work against any collector that follows the spec, not just against our own.

Differences from ours, all allowed by the spec: report ids are its own opaque strings (it
ignores ``x_report_id``), reports are state (an unknown or closed report gets 404), the answer
to a submission is the spec's example shape ``{"measurement_id": "..."}``, and it does not
deduplicate. It keeps what it received in memory (``received``: report id -> contents).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from probe.control.server import hypercorn_config, serve


class SpecCollector:
    def __init__(self) -> None:
        self.open: set[str] = set()
        self.closed: set[str] = set()
        self.received: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = self._route(scope["method"], scope["path"], body)
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if method != "POST":
            return 405, {}
        parts = path.strip("/").split("/")
        if parts == ["report"]:
            template = json.loads(body)
            if template.get("format") != "json":
                return 400, {}
            report_id = f"spec-{uuid.uuid4().hex}{uuid.uuid4().hex}"
            self.open.add(report_id)
            return 200, {
                "backend_version": "1.0.0",
                "report_id": report_id,
                "supported_formats": ["json"],
            }
        if len(parts) == 2 and parts[0] == "report":
            if parts[1] not in self.open:
                return 404, {}
            request = json.loads(body)
            content = request.get("content")
            if request.get("format") != "json" or not isinstance(content, dict):
                return 400, {}
            if content.get("report_id") != parts[1]:
                return 400, {}
            self.received.setdefault(parts[1], []).append(content)
            return 200, {"measurement_id": f"m{next(self._ids)}"}
        if len(parts) == 3 and parts[0] == "report" and parts[2] == "close":
            if parts[1] not in self.open:
                return 404, {}
            self.open.discard(parts[1])
            self.closed.add(parts[1])
            return 200, {"status": "success"}
        return 404, {}


@asynccontextmanager
async def running_spec_collector() -> AsyncIterator[tuple[str, SpecCollector]]:
    app = SpecCollector()
    config = hypercorn_config("127.0.0.1:0")
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve, app, config)
        yield urls[0], app
        nursery.cancel_scope.cancel()
