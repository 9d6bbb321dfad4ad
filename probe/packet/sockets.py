"""The packet-level test's own seam: the only code of ``probe.packet`` that opens a socket.

Every other test reaches the network through :class:`probe.net.Network` (one connection or
datagram per address, the socket hidden), which is what lets them run on the in-memory fake
network of ``tests/fakes``. ``censor_trace`` measures the IP layer itself: it needs what that seam
hides on purpose (an ``IP_TTL`` set before one write, ``TCP_INFO``, ``SO_LINGER`` 0, raw sockets
with kernel BPF filters) and what no in-memory network has (a TTL that expires at a router, an
ICMP error, a forged packet racing the server's). So it has a seam of its own, here, on the
operating system's sockets only: its unit tests run on loopback and in the lab, never on fakes.

``tests/unit/test_layers.py`` allows socket creation in exactly two modules, :mod:`probe.net` and
this one; import-linter keeps ``probe.packet`` out of the pure side and out of the rest of the
library (only the command line wires it in: ``probe packet``, ``probe run --packet-level``).
Every address a socket made here sends to has passed :class:`probe.policy.ConnectPolicy`
(:func:`probe.packet.measure.measure_packet` asks before the first probe).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import trio

from probe.packet import bpf

#: a trio socket (the probes set options on it: IP_TTL, TCP_INFO, SO_LINGER)
Socket = trio.socket.SocketType

#: receive buffer of each capture socket: bursts of replies must not be dropped by the kernel
RCVBUF = 1 << 20


async def tcp() -> Socket:
    """A kernel TCP socket (IPv4) bound to an ephemeral port, not yet connected."""
    return await _bound(socket.SOCK_STREAM)


async def udp() -> Socket:
    """A kernel UDP socket (IPv4) bound to an ephemeral port."""
    return await _bound(socket.SOCK_DGRAM)


async def _bound(kind: int) -> Socket:
    sock = trio.socket.socket(socket.AF_INET, kind)
    try:
        await sock.bind(("0.0.0.0", 0))
    except BaseException:
        sock.close()
        raise
    return sock


def raw(proto: int, program: Sequence[bpf.Insn]) -> Socket:
    """A raw IPv4 socket of ``proto`` with the BPF ``program`` attached (its copies of the
    incoming packets start at the IP header). Raises OSError (PermissionError without
    CAP_NET_RAW)."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    try:
        bpf.attach(sock, list(program))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    except BaseException:
        sock.close()
        raise
    return sock


def raw_unavailable() -> str | None:
    """Why this process cannot open a raw socket (in a few words), or None when it can."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        return "it needs root or CAP_NET_RAW (raw sockets)"
    except OSError as exc:
        return f"raw sockets are unavailable ({exc.strerror or exc})"
    sock.close()
    return None
