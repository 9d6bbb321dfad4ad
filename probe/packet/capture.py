"""Raw-socket copies of the replies to our probes, kept by flow (trio).

Why raw ``AF_INET`` sockets and not a packet socket: Linux hands a raw socket a copy of every
packet of its protocol delivered to this host *before* the TCP/UDP stack sees it, RSTs and
duplicates included, with the IP header; the kernel sockets that sent the probes keep their own
state untouched. No outgoing packet is captured (we count what we send from the sending
socket, :mod:`probe.packet.probes`). One socket per protocol (opened by
:mod:`probe.packet.sockets`), each with a BPF filter (:mod:`probe.packet.bpf`): TCP and UDP from
the traced peer only, ICMP errors only.

:class:`Capture` runs in the measurement's nursery (``await nursery.start(capture.run)``) and
stores ``(arrival time, bytes, origin)`` per flow key (:func:`probe.packet.wire.demux`);
``origin`` is ``"peer"`` (a packet from the traced address) or ``"icmp"`` (an ICMP error about
one of our packets to it). Probes wait on it with :meth:`Capture.wait_after`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from probe.packet import bpf, sockets
from probe.packet.wire import Key, demux


@dataclass(frozen=True, slots=True)
class Captured:
    t: float
    raw: bytes
    origin: str  # "peer" or "icmp"

    @property
    def is_rst(self) -> bool:
        """A TCP segment with RST set."""
        if self.origin != "peer" or self.raw[9] != socket.IPPROTO_TCP:
            return False
        ihl = (self.raw[0] & 0x0F) * 4
        return len(self.raw) > ihl + 13 and bool(self.raw[ihl + 13] & 0x04)

    @property
    def is_syn(self) -> bool:
        """A TCP segment with SYN set (the handshake's SYN-ACK or a retransmission of it)."""
        if self.origin != "peer" or self.raw[9] != socket.IPPROTO_TCP:
            return False
        ihl = (self.raw[0] & 0x0F) * 4
        return len(self.raw) > ihl + 13 and bool(self.raw[ihl + 13] & 0x02)


class Capture:
    """Replies from ``peer`` and ICMP errors about our flows to it, by flow key."""

    def __init__(
        self,
        peer: str,
        *,
        transports: Sequence[str] = ("tcp",),
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.peer = peer
        self._peer = socket.inet_aton(peer)
        self._transports = tuple(transports)
        self._clock = clock
        self._flows: dict[Key, list[Captured]] = {}
        self._changed = trio.Event()
        #: packets read from the sockets (kept or not): the capture's own load
        self.read = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the sockets, report started, then read until cancelled."""
        socks: list[sockets.Socket] = []
        try:
            for proto in self._transports:
                number = socket.IPPROTO_TCP if proto == "tcp" else socket.IPPROTO_UDP
                socks.append(sockets.raw(number, bpf.from_source(self.peer)))
            socks.append(sockets.raw(socket.IPPROTO_ICMP, bpf.icmp_errors()))
            async with trio.open_nursery() as nursery:
                for sock in socks:
                    nursery.start_soon(self._read, sock)
                task_status.started()
        finally:
            for sock in socks:
                sock.close()

    async def _read(self, sock: sockets.Socket) -> None:
        while True:
            raw = await sock.recv(65535)
            self.read += 1
            key = demux(raw, self._peer)
            if key is None:
                continue
            origin = "icmp" if raw[9] == socket.IPPROTO_ICMP else "peer"
            self._flows.setdefault(key, []).append(Captured(self._clock(), raw, origin))
            self._changed.set()
            self._changed = trio.Event()

    def packets(self, key: Key) -> list[Captured]:
        """Everything captured so far for one flow, in arrival order."""
        return list(self._flows.get(key, ()))

    def after(self, key: Key, when: float) -> list[Captured]:
        """The flow's packets that arrived at or after ``when``, SYN-ACKs left out."""
        return [c for c in self._flows.get(key, ()) if c.t >= when and not c.is_syn]

    def between(self, key: Key, start: float, end: float) -> list[Captured]:
        """The flow's packets that arrived in [start, end], SYN-ACKs left out."""
        return [c for c in self.after(key, start) if c.t <= end]

    async def wait_after(self, key: Key, when: float) -> None:
        """Return once the flow has a packet (not a SYN-ACK) that arrived at or after ``when``.
        The caller bounds the wait with a cancel scope."""
        while not self.after(key, when):
            await self._changed.wait()
