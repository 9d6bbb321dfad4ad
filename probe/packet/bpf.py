"""Classic BPF filters for the raw capture sockets (the kernel drops what we do not want).

A raw ``AF_INET`` socket receives a copy of every packet of its protocol that the host receives;
on a busy machine that is most of its traffic. A filter attached with ``SO_ATTACH_FILTER`` runs
in the kernel on each packet, which starts at its IP header, before it is queued to us:

- :func:`from_source`: packets whose IPv4 source is one address (the traced server/resolver);
- :func:`icmp_errors`: ICMP destination unreachable (3) and time exceeded (11) only.

A packet queued before the filter was attached can still arrive; the capture checks every packet
again (:func:`probe.packet.wire.demux`).
"""

from __future__ import annotations

import ctypes
import socket
import struct
from typing import Protocol

_LD, _LDX, _JMP, _RET = 0x00, 0x01, 0x05, 0x06
_W, _B = 0x00, 0x10
_ABS, _IND, _MSH = 0x20, 0x40, 0xA0
_JEQ, _K = 0x10, 0x00
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
ACCEPT = 0xFFFF

#: one instruction: (code, jump if true, jump if false, k)
Insn = tuple[int, int, int, int]


def from_source(ip: str) -> list[Insn]:
    """Accept IPv4 packets whose source address is ``ip``."""
    (value,) = struct.unpack("!I", socket.inet_aton(ip))
    return [
        (_LD | _W | _ABS, 0, 0, 12),  # A = source address
        (_JMP | _JEQ | _K, 0, 1, value),
        (_RET | _K, 0, 0, ACCEPT),
        (_RET | _K, 0, 0, 0),
    ]


def icmp_errors() -> list[Insn]:
    """Accept ICMP packets of type 3 (destination unreachable) or 11 (time exceeded)."""
    return [
        (_LDX | _B | _MSH, 0, 0, 0),  # X = IP header length
        (_LD | _B | _IND, 0, 0, 0),  # A = ICMP type
        (_JMP | _JEQ | _K, 2, 0, 11),
        (_JMP | _JEQ | _K, 1, 0, 3),
        (_RET | _K, 0, 0, 0),
        (_RET | _K, 0, 0, ACCEPT),
    ]


class _Settable(Protocol):
    def setsockopt(self, level: int, option: int, value: bytes, /) -> None: ...


def attach(sock: _Settable, program: list[Insn]) -> None:
    """Attach ``program`` to ``sock`` (the kernel copies it). Raises OSError."""
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
