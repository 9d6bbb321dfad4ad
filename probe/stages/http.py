"""HTTP stage: one HTTP/1.1 GET over an already established stream (the single-use dialer).

We hand our own connected (and, for https, handshaken) trio stream to httpcore's
``AsyncHTTP11Connection(origin=..., stream=...)`` through :class:`TracedStream`, an
``httpcore.AsyncNetworkStream`` adapter written here that records the I/O in the trace.
httpcore therefore never connects, never retries and never merges TCP/TLS errors into its own;
trio and ssl exceptions reach :func:`probe.failures.classify` unchanged. The stream is
consumed: it is closed at the end.

Recorded, whatever happens: one ``HTTPTransaction`` (request and response with ``headers``,
first value per name, and ``headers_list``, every pair in wire order; values and body as
MaybeBinary), one ``write`` network event per request write, and ``bytes_received_cumulative``
events sampled at most every :data:`BYTES_SAMPLE_INTERVAL` plus a final one. They count the
bytes the *connection* received since the round trip began, as they arrive (the hook: the
:class:`~probe.stages.tcp.CountedStream` under the stream, under TLS too, tells us after each
receive), as OONI's sampler counts a connection's bytes: on a path throttled to a few kbit/s a
TLS record of 16 KiB completes only after seconds, so counting the decrypted bytes the client
reads would show no progress at all. A stream not made by the TCP stage (a test's) is counted
in the bytes read from it. ``t_first_byte`` is when the first of those bytes arrived.

The body is read incrementally up to ``body_cap`` (then reading stops,
``body_is_truncated=True``). A failure in the middle of the body (timeout, reset, EOF) keeps
the status, headers and the partial body. ``body_rate`` is bytes/s received after the first
body chunk, over the time from that chunk to the last one.
An EOF that makes httpcore raise ``RemoteProtocolError`` is recorded as ``eof_error``.

:func:`get` returns a :class:`~probe.stages.result.StageResult` whose value is the
:class:`Response` (status 0 when no response head arrived), also when the round trip failed.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import trio

from probe.archival import HTTPRequest, HTTPResponse, HTTPTransaction, MaybeBinary, maybe_binary
from probe.config import Timeouts
from probe.failures import OpFailure, classify, failed
from probe.stages.result import StageResult
from probe.stages.tcp import counted
from probe.trace import Trace
from probe.vocabulary import Failure, Operation

#: spacing of the bytes_received_cumulative samples (a sampling period, not a deadline)
BYTES_SAMPLE_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class Response:
    """What one request got back. ``status`` is 0 when no response head arrived."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool
    location: str | None
    #: bytes/s received after the first body chunk, until the last one
    body_rate: float | None
    #: when the first byte (head or body) arrived, seconds from the trace zero
    t_first_byte: float | None


HTTPResult = StageResult[Response]


class _BodyCapReached(Exception):
    """Raised by a read after :meth:`TracedStream.cut`: unwinds httpcore's generators."""


class TracedStream(httpcore.AsyncNetworkStream):
    """httpcore's stream interface over a trio stream, recording I/O in a trace."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        trace: Trace,
        address: str,
        transaction_id: int,
        tags: Sequence[str] = (),
    ) -> None:
        self._stream = stream
        self._trace = trace
        self.address = address
        self._tid = transaction_id
        self._tags = tuple(tags)
        self.bytes_received = 0
        self.t_first_byte: float | None = None
        self.eof_seen = False
        self._last_sample: float | None = None
        self._sampled_bytes = -1
        self._cut = False
        self._raw = counted(stream)
        if self._raw is not None:
            base = self._raw.received
            raw = self._raw

            def arrived() -> None:
                self._progress(raw.received - base)

            self._raw.listener = arrived

    def _progress(self, total: int) -> None:
        """``total`` bytes received so far in this round trip."""
        self.bytes_received = total
        now = self._trace.elapsed()
        if self.t_first_byte is None:
            self.t_first_byte = now
        if self._last_sample is None or now - self._last_sample >= BYTES_SAMPLE_INTERVAL:
            self.sample(now)

    def detach(self) -> None:
        """Stop following the connection (the round trip is over)."""
        if self._raw is not None:
            self._raw.listener = None

    def cut(self) -> None:
        """Stop reading: the next read raises instead of touching the network.

        Breaking out of httpcore's body iterator would leave its nested async generators
        unfinished; an exception from the stream unwinds and closes all of them."""
        self._cut = True

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._cut:
            raise _BodyCapReached
        data = await self._stream.receive_some(max_bytes)
        if not data:
            self.eof_seen = True
            return b""
        data = bytes(data)
        if self._raw is None:
            self._progress(self.bytes_received + len(data))
        return data

    def sample(self, now: float | None = None) -> None:
        """Record a ``bytes_received_cumulative`` event unless nothing changed since the last."""
        if self.bytes_received == self._sampled_bytes:
            return
        now = self._trace.elapsed() if now is None else now
        self._last_sample = now
        self._sampled_bytes = self.bytes_received
        self._trace.record_network_event(
            "bytes_received_cumulative",
            address=self.address,
            num_bytes=self.bytes_received,
            proto="tcp",
            t0=now,
            t=now,
            transaction_id=self._tid,
            tags=self._tags,
        )

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        t0 = self._trace.elapsed()
        failure: str | None = None
        try:
            await self._stream.send_all(buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            failure = classify(exc, Operation.WRITE).failure
            raise
        finally:
            self._trace.record_network_event(
                "write",
                address=self.address,
                failure=failure,
                num_bytes=None if failure else len(buffer),
                proto="tcp",
                t0=t0,
                transaction_id=self._tid,
                tags=self._tags,
            )

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
            pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError("TLS is the tls stage's job; pass an SSLStream instead")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return getattr(self._stream, "_ssl_object", None)
        return None


def _header_maps(
    pairs: Sequence[tuple[bytes, bytes]],
) -> tuple[dict[str, MaybeBinary], list[tuple[str, MaybeBinary]]]:
    first: dict[str, MaybeBinary] = {}
    seen: set[str] = set()
    listed: list[tuple[str, MaybeBinary]] = []
    for raw_name, raw_value in pairs:
        name = raw_name.decode("latin-1")
        value = maybe_binary(raw_value)
        listed.append((name, value))
        if name.lower() not in seen:
            seen.add(name.lower())
            first[name] = value
    return first, listed


def _request_headers(
    url: str, headers: Sequence[tuple[str, str]], *, method: str, body: bytes
) -> list[tuple[str, str]]:
    """The caller's headers, with ``Host`` from the URL first when the caller gave none, and
    ``Content-Length`` when a body is sent (h11 needs the framing)."""
    names = {name.lower() for name, _ in headers}
    out = list(headers)
    if (body or method not in ("GET", "HEAD")) and "content-length" not in names:
        out.append(("Content-Length", str(len(body))))
    if "host" in names:
        return out
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return [("Host", host), *out]


@dataclass
class _Progress:
    status: int = 0
    head: list[tuple[bytes, bytes]] | None = None
    body: bytearray | None = None
    truncated: bool = False
    error: OpFailure | None = None
    t_first: float | None = None
    t_last: float | None = None
    first_len: int = 0


async def get(
    trace: Trace,
    stream: trio.abc.Stream,
    *,
    url: str,
    address: str,
    alpn: str,
    headers: Sequence[tuple[str, str]],
    timeouts: Timeouts,
    body_cap: int,
    transaction_id: int,
    tags: Sequence[str] = (),
    method: str = "GET",
    body: bytes = b"",
) -> HTTPResult:
    """GET ``url`` over ``stream`` (consumed); records one HTTPTransaction. Never raises for
    network failures; re-raises an outer ``trio.Cancelled`` after recording ``interrupted``.

    ``method``/``body`` allow the few API checks that need e.g. a POST (apps tests)."""
    t0 = trace.elapsed()
    op = Operation.HTTP_ROUND_TRIP
    sent = _request_headers(url, headers, method=method, body=body)
    traced = TracedStream(
        stream, trace=trace, address=address, transaction_id=transaction_id, tags=tags
    )
    prog = _Progress()
    req_headers, req_list = _header_maps([(n.encode(), v.encode()) for n, v in sent])
    request_record = HTTPRequest(
        url=url, method=method, headers=req_headers, headers_list=req_list, body=maybe_binary(body)
    )
    try:
        request = httpcore.Request(method, url, headers=sent, content=body)
        conn = httpcore.AsyncHTTP11Connection(origin=request.url.origin, stream=traced)
    except Exception as exc:  # an URL httpcore cannot represent: a recorded failure
        prog.error = classify(exc, op)
        await traced.aclose()
        return _finish(trace, prog, traced, request_record, alpn, t0, transaction_id, tags)
    try:
        with trio.move_on_after(timeouts.http) as scope:
            try:
                await _round_trip(trace, conn, traced, request, prog, body_cap)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                prog.error = classify(exc, op)
            except httpcore.RemoteProtocolError as exc:
                prog.error = failed(Failure.EOF_ERROR, op) if traced.eof_seen else classify(exc, op)
            except httpcore.ProtocolError as exc:
                prog.error = classify(exc, op)
        if scope.cancelled_caught:
            prog.error = failed(Failure.GENERIC_TIMEOUT_ERROR, op)
    except trio.Cancelled:
        prog.error = failed(Failure.INTERRUPTED, op)
        _finish(trace, prog, traced, request_record, alpn, t0, transaction_id, tags)
        await trio.aclose_forcefully(stream)
        raise
    with trio.CancelScope(shield=True):
        with trio.move_on_after(timeouts.http):
            await conn.aclose()
    return _finish(trace, prog, traced, request_record, alpn, t0, transaction_id, tags)


async def _round_trip(
    trace: Trace,
    conn: httpcore.AsyncHTTP11Connection,
    net: TracedStream,
    request: httpcore.Request,
    prog: _Progress,
    body_cap: int,
) -> None:
    response = await conn.handle_async_request(request)
    prog.status = response.status
    prog.head = list(response.headers)
    prog.body = bytearray()
    try:
        async for chunk in response.aiter_stream():
            if prog.truncated:
                continue  # already buffered by h11; discarded until the next read stops us
            now = trace.elapsed()
            if prog.t_first is None:
                prog.t_first, prog.first_len = now, len(chunk)
            prog.t_last = now
            room = body_cap - len(prog.body)
            prog.body += chunk[:room]
            if len(chunk) >= room:
                prog.truncated = True
                net.cut()
    except _BodyCapReached:
        pass
    finally:
        await response.aclose()


def _finish(
    trace: Trace,
    prog: _Progress,
    net: TracedStream,
    request: HTTPRequest,
    alpn: str,
    t0: float,
    transaction_id: int,
    tags: Sequence[str],
) -> HTTPResult:
    net.detach()
    net.sample()
    body = bytes(prog.body or b"")
    if prog.head is not None:
        resp_headers, resp_list = _header_maps(prog.head)
        response = HTTPResponse(
            code=prog.status,
            headers=resp_headers,
            headers_list=resp_list,
            body=maybe_binary(body),
            body_is_truncated=prog.truncated,
        )
    else:
        response = HTTPResponse(code=0, headers=None, headers_list=None, body="")
    t = trace.elapsed()
    trace.requests.append(
        HTTPTransaction(
            network="tcp",
            address=net.address,
            alpn=alpn,
            failure=None if prog.error is None else prog.error.failure,
            request=request,
            response=response,
            t0=t0,
            t=t,
            tags=list(tags),
            transaction_id=transaction_id,
        )
    )
    decoded = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in prog.head or []]
    location = next((v for n, v in decoded if n.lower() == "location"), None)
    rate: float | None = None
    if prog.t_first is not None and prog.t_last is not None and prog.t_last > prog.t_first:
        rate = (len(body) - prog.first_len) / (prog.t_last - prog.t_first)
    value = Response(
        status=prog.status,
        headers=decoded,
        body=body,
        truncated=prog.truncated,
        location=location,
        body_rate=rate,
        t_first_byte=net.t_first_byte,
    )
    op = Operation.HTTP_ROUND_TRIP if prog.error is None else prog.error.operation
    return StageResult(value, prog.error, op, transaction_id, t0, t)
