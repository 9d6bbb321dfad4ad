"""The triggering bytes: a ClientHello naming the SNI, an HTTP request naming the Host, a DNS query.

The ClientHello is the one this Python's OpenSSL sends (the web test's own handshake library),
produced without a socket through ``ssl.MemoryBIO``, so a censor that matched the web test's
handshake sees the same bytes; a fresh one per probe (its random and key share differ). The HTTP
request carries the web test's headers in the web test's order.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import dns.message
import dns.rdatatype


def client_hello(server_name: str, *, context: ssl.SSLContext | None = None) -> bytes:
    """The first flight of a TLS handshake with SNI ``server_name`` (ALPN http/1.1)."""
    ctx = context or _context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the handshake is never completed: nothing to verify
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def http_request(host: str, *, path: str = "/", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """``GET path`` with ``Host: host`` first, then ``headers`` (the web test's, in its order)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("utf-8")


def dns_query(name: str) -> bytes:
    """An A query for ``name`` with a random id and recursion desired."""
    return dns.message.make_query(name, dns.rdatatype.A).to_wire()
