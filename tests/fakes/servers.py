"""Server and censor behaviours for the fake network: real protocol code over memory streams.

A *handler* is ``async def handler(stream)``: it runs on the server end of a connection the
probe opened. Building blocks:

* :func:`tls` (trio's TLS, server side, with a trustme context from ``tests.unit.servers.Certs``)
  in front of another handler;
* :func:`http`: an HTTP/1.1 server written with h11 (keep-alive, one :class:`Reply` per
  request, chosen by a function of the :class:`Request`); a reply's ``script`` plays the body
  piece by piece with pauses, or ends with :data:`RESET` / :data:`HANG`;
* :func:`th`: the control vantage, answering every POST with a fixed TH response;
* censors: :func:`rst_after` (RST once N bytes came from the client: the ClientHello or the
  request), :func:`sni_censor` (reset/drop/close when the ClientHello names a blocked host,
  else hand the bytes to the real server), :func:`silent` (accepts, never answers);
* links: :func:`throttle` (the bytes toward the client leave at a given rate, a segment at a
  time: a slow link in front of every server, or, keyed on the ClientHello's server name, a
  TSPU-like throttle of one name).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

from tests.fakes.streams import FakeStream, Prepended

Handler = Callable[[trio.abc.Stream], Awaitable[None]]

RESET = "reset"
HANG = "hang"
Step = bytes | float | str


def _fake_end(stream: trio.abc.Stream) -> FakeStream:
    while not isinstance(stream, FakeStream):
        inner = getattr(stream, "transport_stream", None) or getattr(stream, "_stream", None)
        assert inner is not None, f"no FakeStream under {stream!r}"
        stream = inner
    return stream


def reset(stream: trio.abc.Stream, error: OSError | None = None) -> None:
    """RST the connection under ``stream`` (plain, TLS or prepended); with ``error``, break
    it that way instead (what the client's reads and writes then raise)."""
    _fake_end(stream).reset(error)


async def silent(stream: trio.abc.Stream) -> None:
    await trio.sleep_forever()


async def _read_at_least(stream: trio.abc.Stream, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = await stream.receive_some()
        if not chunk:
            break
        data += chunk
    return data


def rst_after(count: int, *, error: OSError | None = None) -> Handler:
    """A censor that resets the connection once ``count`` bytes came from the client (or
    breaks it with ``error``)."""

    async def handler(stream: trio.abc.Stream) -> None:
        await _read_at_least(stream, count)
        reset(stream, error)

    return handler


def sni_censor(blocked: Collection[str], *, action: str, then: Handler) -> Handler:
    """Inspect the first bytes (the ClientHello); when they name a host of ``blocked``: ``reset``
    (RST), ``drop`` (nothing ever comes back) or ``close`` (FIN); else serve ``then``."""

    async def handler(stream: trio.abc.Stream) -> None:
        hello = await stream.receive_some()
        if any(name.encode() in hello for name in blocked):
            if action == RESET:
                reset(stream)
            elif action == "close":
                await stream.aclose()
            else:
                await trio.sleep_forever()
            return
        await then(Prepended(stream, hello))

    return handler


def tls(context: ssl.SSLContext, then: Handler) -> Handler:
    """Terminate TLS with ``context`` (SNI picks nothing: one certificate), then ``then``."""

    async def handler(stream: trio.abc.Stream) -> None:
        session = trio.SSLStream(stream, context, server_side=True)
        try:
            await session.do_handshake()
        except trio.BrokenResourceError:
            # the client rejected the certificate: send the alert OpenSSL queued, as a real
            # server does, and stop
            pending = session._outgoing.read()  # noqa: SLF001 - test server only
            if pending:
                await stream.send_all(pending)
            return
        await then(session)

    return handler


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def host(self) -> str:
        return self.headers.get("host", "")


@dataclass(frozen=True)
class Reply:
    """One response: status, headers, body; or a ``script`` of body pieces and pauses that may
    end with RESET or HANG (the head is sent first, without Content-Length when scripted)."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    script: Sequence[Step] | None = None
    #: RESET or HANG instead of any answer (a censor acting on the request)
    instead: str | None = None


def page(title: str, *, size: int = 0) -> Reply:
    """A small HTML page (padded to ``size`` bytes)."""
    body = f"<html><head><title>{title}</title></head><body>{title}</body></html>".encode()
    body += b" " * max(0, size - len(body))
    return Reply(headers=[("Content-Type", "text/html")], body=body)


def redirect(location: str, *, status: int = 302) -> Reply:
    return Reply(status=status, headers=[("Location", location)])


@dataclass
class HTTPLog:
    requests: list[Request] = field(default_factory=list)


def http(respond: Callable[[Request], Reply] | Reply, log: HTTPLog | None = None) -> Handler:
    """An HTTP/1.1 server (h11): every request gets ``respond(request)``."""

    async def handler(stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            request = await _next_request(conn, stream)
            if request is None:
                return
            if log is not None:
                log.requests.append(request)
            reply = respond(request) if callable(respond) else respond
            if reply.instead == RESET:
                reset(stream)
                return
            if reply.instead == HANG:
                await trio.sleep_forever()
            if not await _send(conn, stream, reply):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                await stream.aclose()
                return
            conn.start_next_cycle()

    return handler


async def _next_request(conn: h11.Connection, stream: trio.abc.Stream) -> Request | None:
    head: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
            return Request(head.method.decode(), head.target.decode(), headers, body)
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _send(conn: h11.Connection, stream: trio.abc.Stream, reply: Reply) -> bool:
    """Send ``reply``; False when the script ended the connection."""
    headers = list(reply.headers)
    if reply.script is None:
        headers.append(("Content-Length", str(len(reply.body))))
    else:
        headers.append(("Connection", "close"))
    await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)))
    if reply.script is None:
        await stream.send_all(conn.send(h11.Data(data=reply.body)) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return True
    for step in reply.script:
        if step == RESET:
            reset(stream)
            return False
        if step == HANG:
            await trio.sleep_forever()
        if isinstance(step, bytes):
            await stream.send_all(conn.send(h11.Data(data=step)) or b"")
        else:
            await trio.sleep(float(step))
    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
    await stream.aclose()
    return False


def th(answer: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    """The control vantage: every POST gets ``answer`` (or ``answer(request_json)``)."""

    def respond(request: Request) -> Reply:
        body = answer(json.loads(request.body)) if callable(answer) else answer
        return Reply(headers=[("Content-Type", "application/json")], body=json.dumps(body).encode())

    return http(respond)


class _Paced(trio.abc.Stream):
    """The server's end of a connection whose bytes toward the client leave at ``rate`` bytes
    per second, ``segment`` bytes at a time (the client sees them arrive as a shaped flow)."""

    def __init__(self, stream: trio.abc.Stream, rate: float, segment: int) -> None:
        self._stream = stream
        self._rate = rate
        self._segment = segment

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), self._segment):
            piece = view[start : start + self._segment]
            await trio.sleep(len(piece) / self._rate)
            await self._stream.send_all(piece)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._stream.aclose()


def throttle(
    rate: float, then: Handler, *, sni: Collection[str] | None = None, segment: int = 512
) -> Handler:
    """Serve ``then`` with every byte toward the client paced at ``rate`` bytes/s; with
    ``sni``, only when the connection's first bytes (the ClientHello) name one of those hosts
    (a throttle keyed on the name: an innocuous SNI to the same address is not slowed)."""

    async def handler(stream: trio.abc.Stream) -> None:
        if sni is not None:
            hello = await stream.receive_some()
            stream = Prepended(stream, hello)
            if not any(name.encode() in hello for name in sni):
                await then(stream)
                return
        await then(_Paced(stream, rate, segment))

    return handler
