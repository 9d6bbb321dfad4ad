"""The collector's ASGI application (run by hypercorn's trio worker, like the test helper).

Routes (ooni/spec bk-003): ``POST /report`` (open), ``POST /report/{id}`` (submit),
``POST /report/{id}/close`` (close), and ``GET /`` (a hello). Checks, in order: route and method
(404/405), per-client rate limit (429 with ``Retry-After``; a token bucket per IPv4 address or
IPv6 /64, :class:`probe.control.limits.RateLimiter`), requests in flight (503 with
``Retry-After``), ``Content-Encoding`` (identity or gzip, else 415 as the spec requires), body
size before and after inflating (413), then the protocol's validation (400/404,
:mod:`probe.collector.protocol`). A submission is answered 200 ``{"measurement_uid": ...}``
only after the committer has made it durable; if the journal fails, 503.

Errors are JSON ``{"error": code, "message": text}``. Logs: one JSON line per request with the
client's network prefix (never its address), the route, status, uid, and whether the
measurement was a duplicate.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from probe import __version__
from probe.collector import layout, protocol
from probe.collector.committer import Committer, JournalUnavailable
from probe.collector.journal import Entry
from probe.collector.protocol import ProtocolError
from probe.control.limits import ConcurrencyGate, Overloaded, RateLimiter
from probe.control.server import anonymize_client

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
LogFn = Callable[[dict[str, Any]], None]

HELLO = {
    "message": "This is an OONI-compatible measurement collector (ooni/spec bk-003).",
    "software": f"censorprobe/{__version__}",
    "supported_formats": protocol.SUPPORTED_FORMATS,
}


@dataclass(frozen=True, slots=True)
class CollectorLimits:
    #: largest request body, bytes (after inflating a gzip'd one too)
    max_body: int = 8 << 20
    #: requests handled at once; more get 503
    max_concurrency: int = 256
    #: requests per minute and client (IPv4 address, IPv6 /64); 0 disables
    rate_per_minute: float = 3000.0
    #: bucket capacity; 0 = same as rate_per_minute
    burst: float = 0.0
    max_clients: int = 100_000
    #: seconds a 429/503 asks the client to wait
    retry_after: int = 5
    #: a body over the cap is still read (and dropped) up to this many times the cap, so that
    #: the client gets its 413; beyond, the connection is closed
    drain_factor: int = 4

    def rate(self) -> dict[str, Any]:
        """The rate limiter's settings."""
        return {
            "rate_per_minute": self.rate_per_minute,
            "burst": self.burst,
            "max_clients": self.max_clients,
        }


class CollectorApp:
    """ASGI application; one instance owns its limiter and gate, and uses one committer."""

    def __init__(
        self,
        committer: Committer,
        *,
        collector_id: int,
        limits: CollectorLimits | None = None,
        log: LogFn | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.committer = committer
        self.collector_id = collector_id
        self.limits = limits = limits or CollectorLimits()
        self._log = log
        self._clock = clock
        self._now = now
        self.rate_limiter = RateLimiter(clock=clock, **limits.rate())
        self.gate = ConcurrencyGate(limits.max_concurrency)
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = self._clock()
        client = str((scope.get("client") or ("", 0))[0])
        record: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "client": anonymize_client(client),
            "method": scope["method"],
            "path": scope["path"][:200],
            "uid": None,
            "duplicate": None,
            "error": None,
        }
        headers: list[tuple[bytes, bytes]] = []
        received = _Received()
        try:
            status, body = await self._route(scope, receive, client, record, received)
        except ProtocolError as exc:
            status, body = exc.status, {"error": exc.code, "message": exc.message}
            record["error"] = exc.code
            if status in (429, 503):
                headers.append((b"retry-after", str(self.limits.retry_after).encode()))
            if status >= 400 and status not in (429, 503):
                self.rejected += 1
            if not received.all:  # refused before its body was read: the connection ends
                headers.append((b"connection", b"close"))
        record["status"] = status
        record["duration"] = round(self._clock() - start, 4)
        if self._log is not None:
            self._log(record)
        await _send_json(send, status, body, headers)

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        client: str,
        record: dict[str, Any],
        received: _Received,
    ) -> tuple[int, dict[str, Any]]:
        path: str = scope["path"]
        method: str = scope["method"]
        if method in ("GET", "HEAD"):
            received.all = True  # no body to wait for
        if path == "/":
            if method not in ("GET", "HEAD"):
                raise ProtocolError(405, "method_not_allowed", "GET / for a hello")
            return 200, HELLO
        parts = path.strip("/").split("/")
        if parts[0] != "report" or len(parts) > 3 or (len(parts) == 3 and parts[2] != "close"):
            raise ProtocolError(404, "not_found", "see ooni/spec bk-003: POST /report ...")
        if method != "POST":
            raise ProtocolError(405, "method_not_allowed", "the collector's routes take POST")
        if not self.rate_limiter.allow(client):
            raise ProtocolError(429, "rate_limited", "too many requests from your network")
        try:
            with self.gate.slot():
                body = await self._read_body(scope, receive, received)
                if len(parts) == 1:
                    return self._open(body)
                if len(parts) == 3:
                    return self._close(parts[1])
                return await self._submit(parts[1], body, record)
        except Overloaded:
            raise ProtocolError(503, "overloaded", "too many requests in flight") from None

    def _open(self, body: bytes) -> tuple[int, dict[str, Any]]:
        template = protocol.parse_open(body)
        report_id = protocol.report_id_for(
            template, now=self._now(), collector_id=self.collector_id
        )
        return 200, {
            "backend_version": protocol.BACKEND_VERSION,
            "report_id": report_id,
            "supported_formats": protocol.SUPPORTED_FORMATS,
        }

    def _close(self, report_id: str) -> tuple[int, dict[str, Any]]:
        if protocol.parse_report_id(report_id) is None:
            raise ProtocolError(404, "no_such_report", "not a report id of this collector")
        return 200, {"status": "success"}

    async def _submit(
        self, report_id: str, body: bytes, record: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        submission = protocol.parse_submission(report_id, body)
        received = self._now()
        uid = protocol.measurement_uid(received, submission)
        entry = Entry(
            digest=submission.digest,
            uid=uid,
            bucket=layout.bucket_of(received, submission.cc, submission.test),
            line=protocol.stored_line(submission, uid),
        )
        try:
            stored = await self.committer.submit(entry)
        except JournalUnavailable:
            raise ProtocolError(
                503, "storage_unavailable", "cannot store now, retry later"
            ) from None
        record["uid"] = stored.uid
        record["duplicate"] = not stored.new
        if stored.new:
            self.accepted += 1
        else:
            self.duplicates += 1
        return 200, {"measurement_uid": stored.uid}

    async def _read_body(self, scope: Scope, receive: Receive, received: _Received) -> bytes:
        """The request body (inflated), at most ``max_body`` bytes. A larger one is read to its
        end and dropped when it is under ``drain_factor`` times the cap, so that the client
        reads the 413 (a client still sending when the connection closes sees a broken pipe,
        not the answer, and would retry what can never be accepted)."""
        limit = self.limits.max_body
        encoding = b""
        declared = -1
        for name, value in scope.get("headers", ()):
            name = name.lower()
            if name == b"content-length":
                if not value.isdigit():
                    raise protocol.bad_request("bad Content-Length")
                declared = int(value)
            elif name == b"content-encoding":
                encoding = value.strip().lower()
        if declared > limit * self.limits.drain_factor:
            raise _too_large(limit)  # not worth reading: the connection ends instead
        body = bytearray()
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise protocol.bad_request("client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                body += chunk
            elif size > limit * self.limits.drain_factor:
                raise _too_large(limit)
            if not message.get("more_body", False):
                break
        received.all = True
        if size > limit:
            raise _too_large(limit)
        if encoding not in (b"", b"identity", b"gzip"):
            raise ProtocolError(
                415, "unsupported_encoding", "Content-Encoding must be identity or gzip"
            )
        return _gunzip(bytes(body), limit) if encoding == b"gzip" else bytes(body)


@dataclass(slots=True)
class _Received:
    """Whether a request's whole body was read (else the connection cannot be reused)."""

    all: bool = False


def _too_large(limit: int) -> ProtocolError:
    return ProtocolError(413, "too_large", f"request bodies are limited to {limit} bytes")


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing more than ``limit`` bytes (a gzip bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise protocol.bad_request(f"bad gzip body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise protocol.bad_request("truncated gzip body")
    return out


async def _send_json(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]
) -> None:
    data = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
