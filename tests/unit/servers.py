"""Reusable loopback servers for unit tests (127.0.0.1 / ::1 only), all running under trio.

* :func:`dns_server`: a UDP DNS server (dnspython messages on a trio socket). Its handler gets
  the parsed query and returns a ``dns.message.Message``, raw ``bytes`` (malformed on purpose),
  ``None`` (drop) or a list of replies (the injection case). A list item may be
  ``(delay_seconds, reply)`` to send it later. Helpers :func:`answer` and :func:`rcode_reply`.
* :func:`tcp_server`: accept loop calling ``handler(stream)``; with ``ssl_context`` each
  connection is wrapped in a server-side ``trio.SSLStream`` first (handshake errors are ignored).
* :func:`http_server`: a scripted HTTP/1.1 server (optionally TLS): it reads the request
  head, then plays a script of ``bytes`` (send), ``float`` (sleep), :data:`HANG` (never answer
  again) or :data:`RESET` (RST the connection).
* :func:`rst_after_client_hello`: reads the first bytes (a ClientHello) then resets.
* :func:`silent`: accepts and never answers.
* :class:`Certs`: a trustme CA and leaf certificates (``tls_server_context``), with
  ``ca_file`` for :func:`probe.stages.tls.make_ssl_context`.
* :func:`closed_port`: a loopback port that nobody listens on.

Servers record what they received (``queries`` / ``requests``) so tests can assert on it.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import trio
import trustme

from probe.netaddr import join_endpoint

# --- DNS --------------------------------------------------------------------------------------

Reply = dns.message.Message | bytes
HandlerResult = Reply | None | Sequence[Reply | tuple[float, Reply]]
DNSHandler = Callable[[dns.message.Message], HandlerResult]


@dataclass
class DNSServer:
    address: str  # "ip:port" / "[ip]:port"
    queries: list[dns.message.Message] = field(default_factory=list)


def answer(query: dns.message.Message, *ips: str, ttl: int = 300) -> dns.message.Message:
    """A NOERROR reply carrying the ``ips`` of the query's type (A or AAAA)."""
    reply = dns.message.make_response(query)
    q = query.question[0]
    wanted = [ip for ip in ips if (":" in ip) == (q.rdtype == dns.rdatatype.AAAA)]
    if wanted:
        reply.answer.append(dns.rrset.from_text_list(q.name, ttl, "IN", q.rdtype, wanted))
    return reply


def rcode_reply(query: dns.message.Message, rcode: int) -> dns.message.Message:
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.Rcode(rcode))
    return reply


def _wire(reply: Reply) -> bytes:
    return reply if isinstance(reply, bytes) else reply.to_wire()


@asynccontextmanager
async def dns_server(handler: DNSHandler, *, host: str = "127.0.0.1") -> AsyncIterator[DNSServer]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    await sock.bind((host, 0))
    server = DNSServer(address=join_endpoint(host, sock.getsockname()[1]))

    async def send_later(delay: float, data: bytes, peer: Any) -> None:
        await trio.sleep(delay)
        await sock.sendto(data, peer)

    async def loop(nursery: trio.Nursery) -> None:
        while True:
            data, peer = await sock.recvfrom(65535)
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            server.queries.append(query)
            result = handler(query)
            if result is None:
                continue
            items = [result] if isinstance(result, dns.message.Message | bytes) else result
            for item in items:
                delay, reply = item if isinstance(item, tuple) else (0.0, item)
                nursery.start_soon(send_later, delay, _wire(reply), peer)

    with sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(loop, nursery)
            yield server
            nursery.cancel_scope.cancel()


# --- TCP / TLS / HTTP -------------------------------------------------------------------------

StreamHandler = Callable[[trio.abc.Stream], Awaitable[None]]


@dataclass
class TCPServer:
    host: str
    port: int
    requests: list[bytes] = field(default_factory=list)

    @property
    def address(self) -> str:
        return join_endpoint(self.host, self.port)


@asynccontextmanager
async def tcp_server(
    handler: StreamHandler,
    *,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[TCPServer]:
    """Serve ``handler`` on an ephemeral loopback port."""
    listeners = await trio.open_tcp_listeners(0, host=host)
    server = TCPServer(host=host, port=listeners[0].socket.getsockname()[1])

    async def serve_one(stream: trio.SocketStream) -> None:
        try:
            if ssl_context is not None:
                tls = trio.SSLStream(stream, ssl_context, server_side=True)
                try:
                    await tls.do_handshake()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    # trio drops the alert OpenSSL queued; send it like a real server would
                    pending = tls._outgoing.read()  # noqa: SLF001 - test server only
                    if pending:
                        await stream.send_all(pending)
                    return
                await handler(tls)
            else:
                await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve_one, listeners)
        yield server
        nursery.cancel_scope.cancel()


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType:
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    assert isinstance(stream, trio.SocketStream)
    return stream.socket


def reset(stream: trio.abc.Stream) -> None:
    """Abort the connection with a RST (SO_LINGER 0 then close)."""
    sock = _socket_of(stream)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


HANG = "hang"
RESET = "reset"
Step = bytes | float | str


async def read_head(stream: trio.abc.Stream) -> bytes:
    """Bytes up to the end of a request head (all that came if the peer closed before)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        buf += chunk
    return buf


async def read_request(stream: trio.abc.Stream) -> bytes:
    """A request head and its Content-Length body (all that came if the peer closed before).

    A real server reads the body before it answers: closing with unread bytes in the receive
    buffer makes the kernel send a RST, which would throw away the client's unread response.
    """
    buf = await read_head(stream)
    head, sep, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value)
    while sep and len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        body += chunk
    return head + sep + body


@asynccontextmanager
async def http_server(
    script: Sequence[Step],
    *,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[TCPServer]:
    """For every connection: read the request (kept in ``requests``), play ``script``."""
    requests: list[bytes] = []

    async def handle(stream: trio.abc.Stream) -> None:
        requests.append(await read_request(stream))
        for step in script:
            if isinstance(step, bytes):
                await stream.send_all(step)
            elif isinstance(step, float | int):
                await trio.sleep(step)
            elif step == HANG:
                await trio.sleep_forever()
            elif step == RESET:
                reset(stream)
                return

    async with tcp_server(handle, host=host, ssl_context=ssl_context) as server:
        server.requests = requests
        yield server


def response(body: bytes, *, status: str = "200 OK", headers: Sequence[str] = ()) -> bytes:
    """A complete HTTP/1.1 response with Content-Length."""
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(head).encode("latin-1") + body


async def rst_after_client_hello(stream: trio.abc.Stream) -> None:
    await stream.receive_some(65536)
    reset(stream)


async def silent(stream: trio.abc.Stream) -> None:
    await trio.sleep_forever()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port that was just bound and released (nobody listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


# --- certificates -----------------------------------------------------------------------------


class Certs:
    """A trustme CA; ``ca_file`` is its PEM for ``make_ssl_context(ca_file=...)``."""

    def __init__(self, tmp_path: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = tmp_path / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(
        self,
        *names: str,
        expired: bool = False,
        self_signed: bool = False,
        alpn: Sequence[str] = ("http/1.1",),
    ) -> ssl.SSLContext:
        """Server context with a leaf for ``names``; ``expired`` (validity in the past) or
        ``self_signed`` (issued by a fresh CA nobody trusts)."""
        issuer = trustme.CA() if self_signed else self.ca
        not_before = not_after = None
        if expired:
            now = dt.datetime.now(dt.UTC)
            not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
        leaf = issuer.issue_cert(*names, not_before=not_before, not_after=not_after)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx
