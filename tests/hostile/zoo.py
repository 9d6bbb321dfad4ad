"""A zoo of hostile loopback servers: what a censor's middlebox, a blockpage server or any site
on a test list may send. Shared by the hostile suite (``test_zoo.py``: the facts recorded) and
``make bench`` (``tests/bench/bench_hostile.py``: peak memory and wall time per target).

Every :class:`Case` is a real server on 127.0.0.1 (plain TCP, or TLS with certificates made by
trustme, or raw bytes where a TLS library would refuse to misbehave) and the path to measure.
Nothing here mocks the probe: ``probe run`` or :func:`probe.experiment.measure_web` connects to
it like to any site.
"""

from __future__ import annotations

import os
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import trio
import trustme
import zstandard

from tests.unit.servers import Certs, TCPServer, read_head, tcp_server

Handler = Callable[[trio.abc.Stream], Awaitable[None]]

#: a bomb: 512 MiB of zeros compress to about this many bytes with gzip -9
BOMB_SIZE = 512 << 20
CHUNK = b"<p>" + b"x" * (64 * 1024 - 3)


@dataclass(frozen=True)
class Case:
    """One hostile server: ``make(certs)`` gives its connection handler and TLS context."""

    name: str
    why: str
    scheme: str = "http"
    make: Callable[[Certs], tuple[Handler, ssl.SSLContext | None]] = field(
        default=lambda certs: (_ok, None)
    )
    #: the longest real time it may take (slowloris cases wait for the probe's timeouts)
    slow: bool = False


# --- handlers -----------------------------------------------------------------------------------


async def _ok(stream: trio.abc.Stream) -> None:
    await read_head(stream)
    body = b"<html><head><title>fine</title></head><body>fine</body></html>"
    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def _head_then(head: bytes, body: Callable[[trio.abc.Stream], Awaitable[None]]) -> Handler:
    async def handle(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        await stream.send_all(head)
        await body(stream)

    return handle


async def _endless(stream: trio.abc.Stream) -> None:
    while True:
        await stream.send_all(CHUNK)


async def _endless_chunked(stream: trio.abc.Stream) -> None:
    piece = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    while True:
        await stream.send_all(piece)


def _bytes(data: bytes) -> Handler:
    async def handle(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        await stream.send_all(data)

    return handle


def _slowly(data: bytes, *, after: bytes = b"", every: float = 1.0) -> Handler:
    """Send ``after`` at once, then ``data`` one byte every ``every`` seconds (slowloris)."""

    async def handle(stream: trio.abc.Stream) -> None:
        await read_head(stream)
        if after:
            await stream.send_all(after)
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(every)

    return handle


_BOMBS: dict[str, bytes] = {}


def bomb(coding: str) -> bytes:
    """A body of ``BOMB_SIZE`` zeros compressed with ``coding`` (made once, kept)."""
    if coding not in _BOMBS:
        zeros = bytes(1 << 20)
        if coding == "gzip":
            comp = zlib.compressobj(9, zlib.DEFLATED, 31)
            data = b"".join(comp.compress(zeros) for _ in range(BOMB_SIZE >> 20)) + comp.flush()
        elif coding == "br":
            encoder = brotli.Compressor(quality=5)
            data = b"".join(encoder.process(zeros) for _ in range(BOMB_SIZE >> 20))
            data += encoder.finish()
        else:
            cctx = zstandard.ZstdCompressor(level=3).compressobj()
            data = b"".join(cctx.compress(zeros) for _ in range(BOMB_SIZE >> 20)) + cctx.flush()
        _BOMBS[coding] = data
    return _BOMBS[coding]


def _bomb(coding: str) -> Callable[[Certs], tuple[Handler, ssl.SSLContext | None]]:
    """The bomb is made when the case is set up, not while the probe waits for an answer."""

    def make(certs: Certs) -> tuple[Handler, ssl.SSLContext | None]:
        return _bomb_handler(bomb(coding), coding), None

    return make


def _bomb_handler(data: bytes, coding: str) -> Handler:
    async def handle(stream: trio.abc.Stream) -> None:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Type: text/html\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        await read_head(stream)
        await stream.send_all(head + data)

    return handle


def redirect_to(location: str, *, status: str = "302 Found") -> Handler:
    head = f"HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    return _bytes(head.encode("utf-8", errors="surrogateescape"))


# --- TLS ----------------------------------------------------------------------------------------


def _tls(certs: Certs, **kw: bool) -> tuple[Handler, ssl.SSLContext]:
    return _ok, certs.server_context("127.0.0.1", **kw)


def _wrong_name(certs: Certs) -> tuple[Handler, ssl.SSLContext]:
    return _ok, certs.server_context("other.example")


def _huge_chain(certs: Certs) -> tuple[Handler, ssl.SSLContext]:
    """A leaf under 40 intermediate CAs (all sent, from a root nobody trusts), plus 60
    unrelated CA certificates: about 100 certificates in one handshake."""
    ca = trustme.CA(path_length=45)
    for _ in range(40):
        ca = ca.create_child_ca()
    leaf = ca.issue_cert("127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    extra = b"".join(trustme.CA().cert_pem.bytes() for _ in range(60))
    pem = leaf.private_key_and_cert_chain_pem.bytes() + extra
    path = Path(certs.ca_file).with_name(f"huge-chain-{os.getpid()}.pem")
    path.write_bytes(pem)
    ctx.load_cert_chain(str(path))
    return _ok, ctx


async def _garbage_after_server_hello(stream: trio.abc.Stream) -> None:
    """Reads a ClientHello, answers a handshake record header and then junk."""
    await stream.receive_some(65536)
    await stream.send_all(b"\x16\x03\x03\x00\x40" + os.urandom(64) + b"\xde\xad" * 512)
    await trio.sleep(5)


async def _alert_at_once(stream: trio.abc.Stream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"\x15\x03\x03\x00\x02\x02\x28")  # fatal handshake_failure


async def _plain_http_on_tls(stream: trio.abc.Stream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


async def _endless_tls_records(stream: trio.abc.Stream) -> None:
    await stream.receive_some(65536)
    record = b"\x16\x03\x03\x40\x00" + b"\x00" * 0x4000
    while True:
        await stream.send_all(record)


def _plain(handler: Handler) -> Callable[[Certs], tuple[Handler, ssl.SSLContext | None]]:
    """A server that speaks for itself on the raw TCP stream (no TLS library in between)."""
    return lambda certs: (handler, None)


_raw = _plain


# --- the zoo ------------------------------------------------------------------------------------

#: bytes that are not HTTP (fixed, so that the parser's complaint is the same every run)
GARBAGE = b"\x00\x16WY\xc0<:\x03" + bytes(range(256)) * 16

HUGE_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"".join(
    b"X-Junk-%06d: %s\r\n" % (i, b"j" * 200) for i in range(6000)
)  # about 1.3 MB of header lines


CASES: list[Case] = [
    Case("endless-body", "200 without Content-Length, a body that never ends",
         make=_plain(_head_then(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", _endless))),
    Case("endless-chunked", "chunked encoding, chunks forever",
         make=_plain(_head_then(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                _endless_chunked))),
    Case("gzip-bomb", "512 MiB of zeros in about 500 KiB of gzip", make=_bomb("gzip")),
    Case("br-bomb", "512 MiB of zeros in brotli", make=_bomb("br")),
    Case("zstd-bomb", "512 MiB of zeros in zstd", make=_bomb("zstd")),
    Case("slowloris-head", "the response head, one byte per second", slow=True,
         make=_plain(_slowly(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))),
    Case("slowloris-body", "a head at once, then the body one byte per second", slow=True,
         make=_plain(_slowly(b"x" * 100, after=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))),
    Case("giant-headers", "1.3 MB of header lines", make=_plain(_bytes(HUGE_HEADERS))),
    Case("giant-header-line", "one 2 MB header value",
         make=_plain(_bytes(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * (2 << 20) + b"\r\n\r\n"))),
    Case("invalid-status-line", "a status line that is not one",
         make=_plain(_bytes(b"HTTP/1.1 OK-ish fine\r\nContent-Length: 0\r\n\r\n"))),
    Case("status-999", "a status code out of range",
         make=_plain(_bytes(b"HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n"))),
    Case("http-0.9", "a body without any status line (HTTP/0.9)",
         make=_plain(_bytes(b"<html>no head at all</html>\n"))),
    Case("binary-garbage", "random bytes instead of HTTP", make=_plain(_bytes(GARBAGE))),
    Case("nul-in-headers", "NUL and control bytes in header names and values",
         make=_plain(_bytes(b"HTTP/1.1 200 OK\r\nX-\x00: a\x00b\x1b\r\n"
                            b"Content-Length: 0\r\n\r\n"))),
    Case("content-length-lies", "Content-Length 1000, 10 bytes, then close",
         make=_plain(_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789"))),
    Case("content-length-huge", "a Content-Length of 30 digits",
         make=_plain(_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\nx"))),
    Case("two-content-lengths", "two different Content-Length headers",
         make=_plain(_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
                            b"hello"))),
    Case("bad-chunk-size", "a chunk size that is not hex",
         make=_plain(_bytes(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n"))),
    Case("tls-self-signed", "a certificate from a CA nobody trusts", scheme="https",
         make=lambda c: _tls(c, self_signed=True)),
    Case("tls-expired", "an expired certificate", scheme="https",
         make=lambda c: _tls(c, expired=True)),
    Case("tls-wrong-name", "a certificate for another name", scheme="https", make=_wrong_name),
    Case("tls-huge-chain", "40 intermediates and 60 unrelated certificates", scheme="https",
         make=_huge_chain),
    Case("tls-garbage-after-hello", "a handshake record header, then junk", scheme="https",
         make=_raw(_garbage_after_server_hello)),
    Case("tls-alert", "a fatal alert for any ClientHello", scheme="https",
         make=_raw(_alert_at_once)),
    Case("tls-plain-http", "plain HTTP on the TLS port", scheme="https",
         make=_raw(_plain_http_on_tls)),
    Case("tls-endless-records", "handshake records forever, never a ServerHello",
         scheme="https", make=_raw(_endless_tls_records)),
]  # fmt: skip


@asynccontextmanager
async def serving(case: Case, certs: Certs) -> AsyncIterator[TCPServer]:
    handler, ssl_context = case.make(certs)
    async with tcp_server(handler, ssl_context=ssl_context) as server:
        yield server


def url_of(case: Case, server: TCPServer) -> str:
    return f"{case.scheme}://{server.address}/{case.name}"


# --- redirects ----------------------------------------------------------------------------------


def router(routes: Callable[[str, TCPServer], bytes]) -> Callable[[TCPServer], Handler]:
    """A server whose answer depends on the request path: ``routes(path, server)``."""

    def make(server: TCPServer) -> Handler:
        async def handle(stream: trio.abc.Stream) -> None:
            head = await read_head(stream)
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = line[1] if len(line) > 1 else "/"
            await stream.send_all(routes(path, server))

        return handle

    return make


def redirect(location: str, *, status: str = "302 Found") -> bytes:
    return (f"HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").encode(
        "utf-8", errors="surrogateescape"
    )


OK_PAGE = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine"


def _chain(path: str, server: TCPServer) -> bytes:
    """/hop/N redirects to /hop/N+1, up to 100; then a page."""
    n = int(path.rsplit("/", 1)[1]) if path.startswith("/hop/") else 0
    return redirect(f"/hop/{n + 1}") if n < 100 else OK_PAGE


def _loop(path: str, server: TCPServer) -> bytes:
    return redirect(f"http://{server.address}/b" if path != "/b" else "/a")


@dataclass(frozen=True)
class RedirectCase:
    name: str
    why: str
    routes: Callable[[str, TCPServer], bytes]


def _to(location: str) -> Callable[[str, TCPServer], bytes]:
    return lambda path, server: redirect(location.format(here=server.address))


REDIRECTS: list[RedirectCase] = [
    RedirectCase("loop", "a redirect loop between two paths", _loop),
    RedirectCase("self", "a page that redirects to itself", _to("http://{here}/")),
    RedirectCase("hundred", "100 redirects in a row", _chain),
    RedirectCase("no-host", "Location: http://", _to("http://")),
    RedirectCase("javascript", "Location: javascript:alert(1)", _to("javascript:alert(1)")),
    RedirectCase("ftp", "Location: ftp://{here}/", _to("ftp://{here}/")),
    RedirectCase("bad-bracket", "Location: http://[::1", _to("http://[::1")),
    RedirectCase("bad-port", "Location with port 99999", _to("http://127.0.0.1:99999/")),
    RedirectCase("port-zero", "Location with port 0", _to("http://127.0.0.1:0/")),
    RedirectCase("empty", "an empty Location", _to("")),
    RedirectCase("spaces", "white space and control characters", _to("http://127.0.0.1 /\x01x")),
    RedirectCase("huge", "a 64 KiB Location", _to("http://{here}/" + "a" * 65536)),
    RedirectCase("zone-id", "a Location with an IPv6 zone id", _to("http://[fe80::1%25lo]/")),
    RedirectCase("credentials", "a Location with user:pass@", _to("http://u:p@{here}/landing")),
]
