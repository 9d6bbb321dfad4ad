"""Small real proxies for the upload tests and the lab: HTTP CONNECT and SOCKS5 (RFC 1928).

Both are plain trio servers: they parse the client's request, connect to the destination and
copy bytes both ways until either side closes. They record every tunnel they open
(``Proxy.tunnels``: kind, the host *as the client named it*, port) so a test can prove the
traffic went through them and, for SOCKS5, that the client sent a name (remote DNS, as with Tor)
rather than an address.

Safety: a proxy only connects to destinations inside ``allow`` (default loopback; the lab passes
its 198.18.0.0/15): names are resolved first and every address checked. Anything else is refused
(CONNECT: 403; SOCKS5: reply 0x02 "connection not allowed by ruleset").

Run as a process (the lab starts one in ``cp-inet``)::

    python -m tests.proxies --http 127.0.0.1:3128 --socks 127.0.0.1:1080 [--allow CIDR,...]
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


@dataclass
class Proxy:
    kind: str  # "http" or "socks5"
    host: str
    port: int
    allow: tuple[Network, ...] = LOOPBACK
    #: (kind, host as requested, port) of every tunnel opened
    tunnels: list[tuple[str, str, int]] = field(default_factory=list)
    refused: list[tuple[str, str, int]] = field(default_factory=list)
    #: print one line per tunnel (the process form: the lab reads its log)
    verbose: bool = False

    def opened(self, kind: str, host: str, port: int) -> None:
        self.tunnels.append((kind, host, port))
        if self.verbose:
            print(f"tunnel {kind} {host} {port}", flush=True)

    def refuse(self, kind: str, host: str, port: int) -> None:
        self.refused.append((kind, host, port))
        if self.verbose:
            print(f"refused {kind} {host} {port}", flush=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "http" if self.kind == "http" else "socks5h"
        return f"{scheme}://{host}:{self.port}"


async def _resolve_allowed(host: str, port: int, allow: Sequence[Network]) -> list[str]:
    """The addresses of ``host`` if every one is allowed, else []."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    ok = all(any(ipaddress.ip_address(a) in net for net in allow) for a in addresses)
    return addresses if ok and addresses else []


async def _connect(addresses: list[str], port: int) -> trio.SocketStream | None:
    for address in addresses:
        try:
            return await trio.open_tcp_stream(address, port)
        except OSError:
            continue
    return None


async def _pipe(a: trio.abc.Stream, b: trio.abc.Stream) -> None:
    async def copy(src: trio.abc.Stream, dst: trio.abc.Stream) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await dst.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(copy, a, b)
        nursery.start_soon(copy, b, a)


class _Reader:
    """Buffered reads from a stream (a request head, then exact byte counts)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def until(self, marker: bytes, limit: int = 16384) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > limit:
                raise ValueError("request too long")
            data = await self.stream.receive_some(4096)
            if not data:
                raise EOFError
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    async def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            data = await self.stream.receive_some(4096)
            if not data:
                raise EOFError
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


async def _http_connect(proxy: Proxy, client: trio.SocketStream) -> None:
    reader = _Reader(client)
    head = await reader.until(b"\r\n\r\n")
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, _, rest = request_line.partition(" ")
    target = rest.split(" ", 1)[0]
    if method != "CONNECT":
        await client.send_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        return
    host, _, port_text = target.rpartition(":")
    host = host.strip("[]")
    port = int(port_text) if port_text.isdigit() else 0
    addresses = await _resolve_allowed(host, port, proxy.allow)
    upstream = await _connect(addresses, port) if addresses else None
    if upstream is None:
        proxy.refuse("http", host, port)
        await client.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return
    proxy.opened("http", host, port)
    await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
    if reader.buffer:
        await upstream.send_all(reader.buffer)
    await _pipe(client, upstream)


async def _socks5(proxy: Proxy, client: trio.SocketStream) -> None:
    reader = _Reader(client)
    version, count = await reader.exactly(2)
    methods = await reader.exactly(count)
    if version != 5 or 0 not in methods:
        await client.send_all(b"\x05\xff")
        return
    await client.send_all(b"\x05\x00")  # no authentication
    version, command, _, atype = await reader.exactly(4)
    if atype == 1:
        host = socket.inet_ntop(socket.AF_INET, await reader.exactly(4))
    elif atype == 4:
        host = socket.inet_ntop(socket.AF_INET6, await reader.exactly(16))
    elif atype == 3:
        (length,) = await reader.exactly(1)
        host = (await reader.exactly(length)).decode("idna")
    else:
        await client.send_all(b"\x05\x08\x00\x01" + bytes(6))
        return
    (port,) = struct.unpack("!H", await reader.exactly(2))
    if command != 1:  # CONNECT only
        await client.send_all(b"\x05\x07\x00\x01" + bytes(6))
        return
    addresses = await _resolve_allowed(host, port, proxy.allow)
    upstream = await _connect(addresses, port) if addresses else None
    if upstream is None:
        proxy.refuse("socks5h" if atype == 3 else "socks5", host, port)
        await client.send_all(b"\x05\x02\x00\x01" + bytes(6))
        return
    proxy.opened("socks5h" if atype == 3 else "socks5", host, port)
    await client.send_all(b"\x05\x00\x00\x01" + bytes(6))
    await _pipe(client, upstream)


async def _serve(proxy: Proxy, listeners: list[trio.SocketListener]) -> None:
    handler = _http_connect if proxy.kind == "http" else _socks5

    async def handle(stream: trio.SocketStream) -> None:
        try:
            await handler(proxy, stream)
        except (EOFError, ValueError, trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    await trio.serve_listeners(handle, listeners)


@asynccontextmanager
async def running_proxy(
    kind: str, *, host: str = "127.0.0.1", port: int = 0, allow: tuple[Network, ...] = LOOPBACK
) -> AsyncIterator[Proxy]:
    """A proxy of ``kind`` (``"http"`` or ``"socks5"``) serving on ``host`` while in the block."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    proxy = Proxy(kind, host, listeners[0].socket.getsockname()[1], allow)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve, proxy, listeners)
        yield proxy
        nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.proxies", description=__doc__)
    parser.add_argument("--http", metavar="HOST:PORT", help="serve an HTTP CONNECT proxy")
    parser.add_argument("--socks", metavar="HOST:PORT", help="serve a SOCKS5 proxy")
    parser.add_argument(
        "--allow",
        default="",
        metavar="CIDR,...",
        help="destinations allowed besides loopback (e.g. the lab's 198.18.0.0/15)",
    )
    args = parser.parse_args(argv)
    allow = LOOPBACK + tuple(
        ipaddress.ip_network(c.strip()) for c in args.allow.split(",") if c.strip()
    )

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            for kind, spec in (("http", args.http), ("socks5", args.socks)):
                if spec:
                    host, _, port = spec.rpartition(":")
                    listeners = await trio.open_tcp_listeners(int(port), host=host.strip("[]"))
                    proxy = Proxy(kind, host.strip("[]"), int(port), allow, verbose=True)
                    nursery.start_soon(_serve, proxy, listeners)
                    print(f"{kind} proxy on {proxy.url}", flush=True)

    if not (args.http or args.socks):
        parser.error("give --http and/or --socks")
    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
