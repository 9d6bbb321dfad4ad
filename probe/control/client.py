"""Client side of the control vantage: POST one :class:`ControlRequest` to a test helper.

``query_control`` never raises for network or protocol trouble; it returns
``(response_json, None)`` or ``(None, control_failure)``, the failure being an OONI string:
the classified network error (``connection_refused``, ``ssl_unknown_authority``, ...),
``generic_timeout_error`` when ``timeouts.control`` expires (enforced by a cancel scope around
the whole exchange), ``http_request_failed`` for a non-200 status (503 = TH overloaded) and
``json_parse_error`` for a body that is not JSON or does not match the TH response schema.

A run shares one pooled client (:func:`open_pool`): keep-alive connections to the TH save a
TCP+TLS handshake per target. The control channel is infrastructure, not a measured step, so
when a pooled exchange fails before an answer (typically a keep-alive connection the server had
closed), it is tried once more on a fresh connection within the same deadline.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import orjson
import pydantic
import trio

from probe import __version__
from probe.archival import ControlRequest, ControlResponse
from probe.config import Timeouts
from probe.failures import Failure, Operation, classify
from probe.net import TRIO, HTTPCoreBackend, Network

#: a TH answer larger than this is not a TH answer
MAX_RESPONSE_BYTES = 4 << 20
USER_AGENT = f"censorprobe/{__version__}"


async def query_control(
    url: str,
    request: ControlRequest,
    *,
    ssl_context: ssl.SSLContext,
    timeouts: Timeouts,
    pool: ControlPool | None = None,
    network: Network = TRIO,
) -> tuple[dict[str, Any] | None, str | None]:
    """POST ``request`` to the TH at ``url``: (response JSON, None) or (None, control_failure)."""
    payload = request.model_dump_json().encode()
    result: tuple[dict[str, Any] | None, str | None] = (
        None,
        str(Failure.GENERIC_TIMEOUT_ERROR),
    )
    with trio.move_on_after(timeouts.control):
        if pool is not None:
            result = await _exchange(url, payload, pool=pool)
            if result[0] is not None or result[1] in _ANSWERED:
                return result
        async with open_pool(ssl_context, size=1, network=network) as fresh:
            result = await _exchange(url, payload, pool=fresh)
    return result


#: failures that came with an answer from the TH: trying again would not change them
_ANSWERED = frozenset({str(Failure.HTTP_REQUEST_FAILED), str(Failure.JSON_PARSE_ERROR)})


class ControlPool:
    """Keep-alive HTTP/1.1 connections to the TH: a stack of idle ones, at most ``size`` kept.

    One POST per target does not need httpx's layers (cookies, auth, redirects, URL models),
    nor httpcore's general pool, whose request/connection matching scans every connection for
    every queued request: both were the largest CPU costs per target after our own TLS
    handshake. Each request takes an idle connection (or opens one) and gives it back if the
    server kept it open.
    """

    def __init__(self, ssl_context: ssl.SSLContext, *, size: int, network: Network = TRIO) -> None:
        self._ssl_context = ssl_context
        self._size = size
        self._backend = HTTPCoreBackend(network)
        self._idle: list[httpcore.AsyncHTTPConnection] = []

    async def _take(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.can_handle_request(origin) and conn.is_idle() and not conn.has_expired():
                return conn
            with trio.CancelScope(shield=True):
                await conn.aclose()
        return httpcore.AsyncHTTPConnection(
            origin=origin, ssl_context=self._ssl_context, network_backend=self._backend
        )

    async def post(
        self, url: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes | None]:
        """(status, body) for one POST; body None when it exceeded MAX_RESPONSE_BYTES."""
        target = httpcore.URL(url)
        conn = await self._take(target.origin)
        keep = False
        try:
            request = httpcore.Request("POST", target, headers=headers, content=body)
            response = await conn.handle_async_request(request)
            data = bytearray()
            try:
                if _declared_length(response.headers) > MAX_RESPONSE_BYTES:
                    return response.status, None  # refused unread (connection not kept)
                oversized = False
                async for chunk in response.aiter_stream():
                    # past the cap the rest is drained and dropped: leaving the loop early
                    # would leave httpcore's body generators unclosed; the control deadline
                    # bounds the drain
                    if not oversized:
                        data += chunk
                        oversized = len(data) > MAX_RESPONSE_BYTES
                        if oversized:
                            data = bytearray()
            finally:
                await response.aclose()
            if oversized:
                return response.status, None
            keep = True
            return response.status, bytes(data)
        finally:
            if keep and conn.is_idle() and len(self._idle) < self._size:
                self._idle.append(conn)
            else:
                with trio.CancelScope(shield=True):
                    await conn.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        with trio.CancelScope(shield=True):
            for conn in idle:
                await conn.aclose()

    async def __aenter__(self) -> ControlPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def open_pool(ssl_context: ssl.SSLContext, *, size: int, network: Network = TRIO) -> ControlPool:
    """Keep-alive connections to the TH, at most ``size`` kept idle (use ``async with``)."""
    return ControlPool(ssl_context, size=size, network=network)


async def _exchange(
    url: str, payload: bytes, *, pool: ControlPool
) -> tuple[dict[str, Any] | None, str | None]:
    headers = [
        (b"Host", _host_header(url)),
        (b"Content-Type", b"application/json"),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Content-Length", str(len(payload)).encode()),
    ]
    try:
        status, body = await pool.post(url, headers, payload)
    except (httpcore.UnsupportedProtocol, ValueError):
        return None, str(Failure.HTTP_REQUEST_FAILED)
    except httpcore.ConnectError as exc:  # httpcore's "connect" is TCP and the TLS handshake
        return None, classify(exc, Operation.TLS_HANDSHAKE).failure
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
        return None, classify(exc, Operation.HTTP_ROUND_TRIP).failure
    except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
        return None, classify(exc, Operation.HTTP_ROUND_TRIP).failure
    if status != 200:
        return None, str(Failure.HTTP_REQUEST_FAILED)
    if body is None:
        return None, str(Failure.JSON_PARSE_ERROR)
    return _decode(body)


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The Content-Length a response declares (0 if none or unreadable)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else 0
    return 0


def _host_header(url: str) -> bytes:
    parsed = httpcore.URL(url)
    default = {b"http": 80, b"https": 443}.get(parsed.scheme)
    host = parsed.host
    if parsed.port is not None and parsed.port != default:
        host += b":" + str(parsed.port).encode()
    return host


def _decode(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = orjson.loads(body)
        ControlResponse.model_validate(data, strict=False)
    except (ValueError, pydantic.ValidationError):  # orjson.JSONDecodeError is a ValueError
        return None, str(Failure.JSON_PARSE_ERROR)
    if not isinstance(data, dict):
        return None, str(Failure.JSON_PARSE_ERROR)
    return data, None
