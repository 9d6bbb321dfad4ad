"""The network seam: the only way the probe reaches a socket.

Stages, the control client and geolocation never open a socket themselves; they are given a
:class:`Network` (httpcore's ``AsyncNetworkBackend`` idea, netxlite's ``Netx{Underlying}``):

* ``connect_tcp(ip, port)``: ONE TCP connection to ONE address, no resolution, no racing, no
  retries (never ``trio.open_tcp_stream``, which races and hides the addresses it tried);
* ``open_udp(ip, port)``: a connected UDP socket (so ICMP port-unreachable is an error);
* ``getaddrinfo(host)``: the system resolver;
* ``wrap_tls(stream, ssl_context, server_hostname)``: a client TLS session over any stream
  (the handshake is the caller's, under its own deadline).

Errors are the operating system's (``OSError``, ``socket.gaierror``, trio's wrappers); the
caller classifies them (:func:`probe.failures.classify`) and owns every deadline with a cancel
scope: the seam has no timeouts. :class:`TrioNetwork` is production and the ONLY module of the
probe that touches ``trio.socket`` or wraps a stream in TLS; tests pass an in-memory network
scripted per address (``tests/fakes``), as trio tests its happy eyeballs with a fake socket
factory. :class:`HTTPCoreBackend` lets httpcore (the control client, whoami) go through the
same seam.
"""

from __future__ import annotations

import math
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Final, Protocol

import httpcore
import trio

from probe.netaddr import parse_ip

#: the largest datagram a UDP receive returns
MAX_DATAGRAM: Final = 65535

TLSStream = trio.SSLStream[trio.abc.Stream]


@dataclass(frozen=True, slots=True)
class AddrInfo:
    """One getaddrinfo result: the address family, the address, the canonical name (or "")."""

    family: int
    ip: str
    canonname: str


class DatagramSocket(Protocol):
    """A UDP socket connected to one peer."""

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    def close(self) -> None: ...


class Network(Protocol):
    """What the probe may do with the network (see the module docstring)."""

    async def connect_tcp(self, ip: str, port: int) -> trio.abc.HalfCloseableStream: ...

    async def open_udp(self, ip: str, port: int) -> DatagramSocket: ...

    async def getaddrinfo(self, host: str, *, family: int = 0) -> list[AddrInfo]: ...

    def wrap_tls(
        self, stream: trio.abc.Stream, ssl_context: ssl.SSLContext, *, server_hostname: str | None
    ) -> TLSStream: ...


def family_of(ip: str) -> int:
    """``AF_INET`` or ``AF_INET6`` for an address literal; ValueError for anything else."""
    addr = parse_ip(ip)
    if addr is None:
        raise ValueError(f"not an IP address: {ip!r}")
    return socket.AF_INET6 if addr.version == 6 else socket.AF_INET


class _TrioDatagram:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock

    async def send(self, data: bytes) -> None:
        await self._sock.send(data)

    async def receive(self) -> bytes:
        return bytes(await self._sock.recv(MAX_DATAGRAM))

    def close(self) -> None:
        self._sock.close()


async def _connected(ip: str, port: int, kind: int) -> trio.socket.SocketType:
    """A socket of ``kind`` connected to ``ip:port`` (closed again if that fails)."""
    sock = trio.socket.socket(family_of(ip), kind)
    try:
        await sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


class TrioNetwork:
    """The operating system's network through trio (stateless: one instance serves a run)."""

    async def connect_tcp(self, ip: str, port: int) -> trio.abc.HalfCloseableStream:
        return trio.SocketStream(await _connected(ip, port, socket.SOCK_STREAM))

    async def open_udp(self, ip: str, port: int) -> DatagramSocket:
        return _TrioDatagram(await _connected(ip, port, socket.SOCK_DGRAM))

    async def getaddrinfo(self, host: str, *, family: int = 0) -> list[AddrInfo]:
        call = partial(
            socket.getaddrinfo,
            host,
            None,
            family=family,
            type=socket.SOCK_STREAM,
            flags=socket.AI_CANONNAME,
        )
        infos = await trio.to_thread.run_sync(call, abandon_on_cancel=True)
        return [AddrInfo(int(fam), str(addr[0]), canon or "") for fam, _, _, canon, addr in infos]

    def wrap_tls(
        self, stream: trio.abc.Stream, ssl_context: ssl.SSLContext, *, server_hostname: str | None
    ) -> TLSStream:
        return trio.SSLStream(stream, ssl_context, server_hostname=server_hostname or None)


#: the production network (stateless, so one shared instance is no global state)
TRIO: Final[Network] = TrioNetwork()


async def close_now(resource: trio.abc.AsyncResource) -> None:
    """Close at once, even inside a cancelled scope, without waiting for the peer: a measured
    connection owes it no goodbye (no TLS close_notify exchange)."""
    with trio.CancelScope(shield=True):
        await trio.aclose_forcefully(resource)


# --- httpcore over the seam -----------------------------------------------------------------


class _HTTPCoreStream(httpcore.AsyncNetworkStream):
    """httpcore's stream interface over a trio stream from a :class:`Network`."""

    def __init__(self, stream: trio.abc.Stream, network: Network) -> None:
        self._stream = stream
        self._network = network

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _guard(timeout, httpcore.ReadTimeout, httpcore.ReadError):
            return bytes(await self._stream.receive_some(max_bytes))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _guard(timeout, httpcore.WriteTimeout, httpcore.WriteError):
            await self._stream.send_all(buffer)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = self._network.wrap_tls(self._stream, ssl_context, server_hostname=server_hostname)
        try:
            with _guard(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(self._stream)
            raise
        return _HTTPCoreStream(tls, self._network)

    def get_extra_info(self, info: str) -> object:
        if info == "ssl_object" and isinstance(self._stream, trio.SSLStream):
            return self._stream._ssl_object
        return None


@contextmanager
def _guard(
    timeout: float | None, timeout_kind: type[Exception], error_kind: type[Exception]
) -> Iterator[None]:
    """httpcore's contract: ``timeout`` (None: none) raises ``timeout_kind``, OS and trio stream
    errors raise ``error_kind``; the original error is kept as the cause (classify walks it)."""
    with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
        try:
            yield
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise error_kind(str(exc)) from exc
    if scope.cancelled_caught:
        raise timeout_kind(f"no progress in {timeout} s")


class HTTPCoreBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend over a :class:`Network`: a name is resolved with the
    network's getaddrinfo and its addresses are tried in order, one connection each."""

    def __init__(self, network: Network) -> None:
        self._network = network

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[object] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        family = {"0.0.0.0": socket.AF_INET, "::": socket.AF_INET6}.get(local_address or "", 0)
        with _guard(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            if parse_ip(host) is not None:
                addresses = [host.strip("[]")]
            else:
                infos = await self._network.getaddrinfo(host, family=family)
                addresses = list(dict.fromkeys(i.ip for i in infos))
            last: BaseException | None = None
            for ip in addresses:
                if family and family_of(ip) != family:
                    continue
                try:
                    stream = await self._network.connect_tcp(ip, port)
                except OSError as exc:
                    last = exc
                    continue
                return _HTTPCoreStream(stream, self._network)
            if last is not None:
                raise last
            raise OSError(f"no address of family {family} for {host!r}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[object] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("unix sockets are not part of the probe's network")

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)
