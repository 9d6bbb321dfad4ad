"""The control server: an ASGI app speaking the Web Connectivity TH protocol, run by hypercorn.

``POST /`` takes a JSON :class:`probe.archival.ControlRequest` and answers the TH response
(reference/ooni-format.md 10.2, built by :mod:`probe.control.measure`); ``GET /`` answers a hello.
``GET /x/whoami`` (ours; OONI's TH has no such endpoint) answers ``{"ip": "<client address>"}``
so that a probe behind NAT learns its public address (probe.geo); it is rate-limited like
``POST /`` and the address goes only back to that client, never into the logs.
Checks, in order: method and path (404/405), per-client rate limit (429), requests in flight
(503, as OONI's TH does when overloaded), body size (413), JSON and field validation (400), then
the measurement under a hard deadline (504 when it fires). Every error is a JSON object
``{"error": code, "message": text}``.

Logs: one JSON line per request (``ts``, ``client``, ``method``, ``path``, ``status``,
``url_host``, ``endpoints``, ``duration``, ``error``). The client address is never logged in
full: ``client`` is its network prefix (IPv4 /24, IPv6 /48), enough to spot abuse, not enough
to name a volunteer. The full address lives only in the rate limiter's bounded memory.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio

from probe import __version__
from probe.control.limits import ConcurrencyGate, Overloaded, RateLimiter, ServerLimits
from probe.control.protocol import RequestError, Target, parse_request

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
MeasureFn = Callable[[Target], Awaitable[dict[str, Any]]]
LogFn = Callable[[dict[str, Any]], None]

#: our public-IP discovery endpoint (probe.geo.publicip)
WHOAMI_PATH = "/x/whoami"

HELLO = {
    "message": "Hello, this is a Web Connectivity test helper. POST a control request to /.",
    "software": f"censorprobe/{__version__}",
}


def anonymize_client(ip: str) -> str:
    """The client's network prefix for the logs: IPv4 /24, IPv6 /48; "" if not an address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network((addr, prefix), strict=False))


def client_address(ip: str) -> str | None:
    """The client's address as whoami reports it (IPv4-mapped IPv6 as IPv4); None if none."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def json_log_to_stderr(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), file=sys.stderr, flush=True)


class _Reply(Exception):
    """Internal: answer with this status and JSON object."""

    def __init__(self, status: int, body: dict[str, Any], *, error: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.error = error


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"error": code, "message": message}, error=code)


class ControlApp:
    """ASGI application; one instance owns its limiter, gate and measurement function."""

    def __init__(
        self,
        *,
        measure: MeasureFn,
        limits: ServerLimits | None = None,
        log: LogFn = json_log_to_stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self.limits = limits = limits or ServerLimits()
        self._log = log
        self._clock = clock
        self.rate_limiter = RateLimiter(
            rate_per_minute=limits.rate_per_minute,
            burst=limits.burst,
            max_clients=limits.max_clients,
            clock=clock,
        )
        self.gate = ConcurrencyGate(limits.max_concurrency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = self._clock()
        client = scope.get("client") or ("", 0)
        record: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "client": anonymize_client(str(client[0])),
            "method": scope["method"],
            "path": scope["path"],
            "url_host": None,
            "endpoints": None,
            "error": None,
        }
        try:
            status, body = await self._route(scope, receive, str(client[0]), record)
        except _Reply as reply:
            status, body = reply.status, reply.body
            record["error"] = reply.error
        record["status"] = status
        record["duration"] = round(self._clock() - start, 3)
        self._log(record)
        await _send_json(send, status, body, head=scope["method"] == "HEAD")

    async def _route(
        self, scope: Scope, receive: Receive, client_ip: str, record: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if scope["path"] == WHOAMI_PATH:
            return self._whoami(scope, client_ip)
        if scope["path"] != "/":
            raise _error(404, "not_found", "the test helper lives at /")
        if scope["method"] in ("GET", "HEAD"):
            return 200, HELLO
        if scope["method"] != "POST":
            raise _error(405, "method_not_allowed", "use POST / (or GET / for a hello)")
        if not self.rate_limiter.allow(client_ip):
            raise _error(429, "rate_limited", "too many requests from your network, slow down")
        try:
            with self.gate.slot():
                body = await self._read_body(scope, receive)
                target = parse_request(
                    body,
                    max_endpoints=self.limits.max_endpoints,
                    max_url_length=self.limits.max_url_length,
                )
                record["url_host"] = target.host
                record["endpoints"] = len(target.probe_ips)
                with trio.move_on_after(self.limits.request_deadline):
                    return 200, await self._measure(target)
                raise _error(504, "deadline", "the measurement did not finish in time")
        except Overloaded:
            raise _error(503, "overloaded", "too many requests in flight, retry later") from None
        except RequestError as exc:
            raise _error(exc.status, exc.code, exc.message) from None

    def _whoami(self, scope: Scope, client_ip: str) -> tuple[int, dict[str, Any]]:
        if scope["method"] not in ("GET", "HEAD"):
            raise _error(405, "method_not_allowed", f"use GET {WHOAMI_PATH}")
        if not self.rate_limiter.allow(client_ip):
            raise _error(429, "rate_limited", "too many requests from your network, slow down")
        ip = client_address(client_ip)
        if ip is None:
            raise _error(400, "bad_request", "no client address on this connection")
        return 200, {"ip": ip}

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                if not value.isdigit():
                    raise _error(400, "bad_request", "bad Content-Length")
                if int(value) > limit:
                    raise _error(413, "too_large", f"request bodies are limited to {limit} bytes")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _error(400, "bad_request", "client went away")
            body += message.get("body", b"")
            if len(body) > limit:
                raise _error(413, "too_large", f"request bodies are limited to {limit} bytes")
            if not message.get("more_body", False):
                return bytes(body)


async def _send_json(send: Send, status: int, body: dict[str, Any], *, head: bool) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else data})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def hypercorn_config(
    listen: str, *, tls_cert: str | None = None, tls_key: str | None = None
) -> Any:
    """A hypercorn Config binding ``listen`` (HTTP/1.1 and h2; TLS when cert and key are given)."""
    from hypercorn.config import Config as HypercornConfig

    config = HypercornConfig()
    config.bind = [listen]
    config.accesslog = None  # ControlApp logs one JSON line per request itself
    config.errorlog = "-"
    config.loglevel = "WARNING"
    config.h11_max_incomplete_size = 16 * 1024
    config.include_server_header = False
    config.alpn_protocols = ["h2", "http/1.1"]
    if tls_cert and tls_key:
        config.certfile = tls_cert
        config.keyfile = tls_key
    return config


async def serve(
    app: ControlApp,
    config: Any,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with hypercorn's trio worker until cancelled; reports the bound URLs."""
    from hypercorn.trio import serve as hypercorn_serve

    await hypercorn_serve(cast(Any, app), config, task_status=task_status)
