"""FakeNetwork: :class:`probe.net.Network` in memory, scripted per address (trio's Scenario).

Use it as ``async with fake_network(endpoints=..., hosts=..., resolvers=...) as net:`` inside a
trio test (servers run in a nursery the context owns) and pass ``net`` where the probe takes a
network (``RunContext.network``, a stage's ``net=``).

* ``endpoints``: ``"ip:port" -> Endpoint``: :func:`serve` a handler (after an optional delay),
  :func:`refused` (RST to the SYN), :func:`dropped` (the SYN vanishes: connect never
  completes), :func:`unreachable` (ICMP host/network unreachable). An address nobody scripted
  is unreachable (``ENETUNREACH``), and still logged.
* ``hosts``: ``name -> Host`` (or a list of addresses): getaddrinfo answers, delay, an EAI error
  code, or ``hang``.
* ``resolvers``: ``"ip:port" -> handler(query) -> reply | bytes | None | [replies]`` (items may
  be ``(delay, reply)``), the semantics of ``tests.unit.servers.dns_server``; an unscripted
  resolver answers with ICMP port unreachable (``connection_refused``).

Logs: ``connects`` (every TCP attempt: ip, port, virtual time), ``lookups`` (getaddrinfo),
``datagrams`` (every UDP query sent: resolver, parsed query).
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import dns.message
import trio

from probe.net import AddrInfo, DatagramSocket, TLSStream, family_of
from probe.netaddr import join_endpoint
from tests.fakes.servers import Handler
from tests.fakes.streams import stream_pair

DNSReply = dns.message.Message | bytes
DNSHandler = Callable[
    [dns.message.Message], DNSReply | None | Sequence[DNSReply | tuple[float, DNSReply]]
]


@dataclass(frozen=True)
class Endpoint:
    """What connecting to one ip:port does."""

    handler: Handler | None = None
    delay: float = 0.0
    errno: int | None = None
    drop: bool = False


def serve(handler: Handler, *, delay: float = 0.0) -> Endpoint:
    return Endpoint(handler=handler, delay=delay)


def refused(*, delay: float = 0.0) -> Endpoint:
    return Endpoint(errno=errno.ECONNREFUSED, delay=delay)


def dropped() -> Endpoint:
    return Endpoint(drop=True)


def unreachable(code: int = errno.EHOSTUNREACH, *, delay: float = 0.0) -> Endpoint:
    return Endpoint(errno=code, delay=delay)


@dataclass(frozen=True)
class Host:
    """What getaddrinfo says about one name."""

    addresses: Sequence[str] = ()
    delay: float = 0.0
    #: a getaddrinfo EAI_* code (socket.EAI_NONAME: NXDOMAIN)
    error: int | None = None
    hang: bool = False
    canonname: str = ""


@dataclass(frozen=True)
class Connect:
    ip: str
    port: int
    t: float


class _Datagram:
    """A connected UDP socket to a scripted resolver."""

    def __init__(self, net: FakeNetwork, endpoint: str, handler: DNSHandler | None) -> None:
        self._net = net
        self._endpoint = endpoint
        self._handler = handler
        self._send, self._receive = trio.open_memory_channel[bytes](64)

    async def send(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        self._net.datagrams.append((self._endpoint, query))
        if self._handler is None:
            return
        result = self._handler(query)
        if result is None:
            return
        items = [result] if isinstance(result, dns.message.Message | bytes) else result
        for item in items:
            delay, reply = item if isinstance(item, tuple) else (0.0, item)
            wire = reply if isinstance(reply, bytes) else reply.to_wire()
            self._net.nursery.start_soon(self._deliver, delay, wire)

    async def _deliver(self, delay: float, wire: bytes) -> None:
        await trio.sleep(delay)
        try:
            self._send.send_nowait(wire)
        except (trio.ClosedResourceError, trio.BrokenResourceError, trio.WouldBlock):
            pass

    async def receive(self) -> bytes:
        if self._handler is None:
            await trio.lowlevel.checkpoint()
            raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        return await self._receive.receive()

    def close(self) -> None:
        self._send.close()
        self._receive.close()


@dataclass
class FakeNetwork:
    """The scripted internet (see the module docstring)."""

    nursery: trio.Nursery
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    hosts: Mapping[str, Host | Sequence[str]] = field(default_factory=dict)
    resolvers: Mapping[str, DNSHandler] = field(default_factory=dict)
    connects: list[Connect] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    datagrams: list[tuple[str, dns.message.Message]] = field(default_factory=list)

    def connected_to(self, ip: str) -> bool:
        return any(c.ip == ip for c in self.connects)

    async def connect_tcp(self, ip: str, port: int) -> trio.abc.HalfCloseableStream:
        family_of(ip)  # a caller bug (not an address) raises, as the real network does
        self.connects.append(Connect(ip, port, trio.current_time()))
        script = self.endpoints.get(join_endpoint(ip, port), unreachable(errno.ENETUNREACH))
        await trio.sleep(script.delay)
        if script.drop:
            await trio.sleep_forever()
        if script.errno is not None:
            raise OSError(script.errno, os.strerror(script.errno))
        client, server = stream_pair()
        self.nursery.start_soon(self._serve, script.handler, server)
        return client

    async def _serve(self, handler: Handler | None, stream: trio.abc.Stream) -> None:
        try:
            if handler is None:
                await trio.sleep_forever()
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def open_udp(self, ip: str, port: int) -> DatagramSocket:
        family_of(ip)
        await trio.lowlevel.checkpoint()
        endpoint = join_endpoint(ip, port)
        return _Datagram(self, endpoint, self.resolvers.get(endpoint))

    async def getaddrinfo(self, host: str, *, family: int = 0) -> list[AddrInfo]:
        self.lookups.append(host)
        script = self.hosts.get(host, Host(error=socket.EAI_NONAME))
        if not isinstance(script, Host):
            script = Host(addresses=list(script))
        await trio.sleep(script.delay)
        if script.hang:
            await trio.sleep_forever()
        if script.error is not None:
            raise socket.gaierror(script.error, f"scripted error for {host}")
        out = [AddrInfo(family_of(ip), ip, script.canonname) for ip in script.addresses]
        return [a for a in out if not family or a.family == family]

    def wrap_tls(
        self, stream: trio.abc.Stream, ssl_context: ssl.SSLContext, *, server_hostname: str | None
    ) -> TLSStream:
        return trio.SSLStream(stream, ssl_context, server_hostname=server_hostname or None)


@asynccontextmanager
async def fake_network(
    *,
    endpoints: Mapping[str, Endpoint] | None = None,
    hosts: Mapping[str, Host | Sequence[str]] | None = None,
    resolvers: Mapping[str, DNSHandler] | None = None,
) -> AsyncIterator[FakeNetwork]:
    async with trio.open_nursery() as nursery:
        net = FakeNetwork(
            nursery,
            endpoints=dict(endpoints or {}),
            hosts=dict(hosts or {}),
            resolvers=dict(resolvers or {}),
        )
        yield net
        nursery.cancel_scope.cancel()
