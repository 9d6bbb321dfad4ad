"""On-path TCP injector (runs in cp-border, hop 3): forged RSTs and forged blockpages.

iptables queues the triggering client packets (a string match on the SNI or on the Host header,
in raw PREROUTING) to NFQUEUE. For each, this program sends forged packets back to the client
*from the server's address* with a raw socket, then lets the original continue: it behaves like
the on-path injectors of the field (a copy of the traffic, no power to hold it back), so the
server still answers and the client sees the forged packets first, the genuine ones afterwards.

- ``--rst NAME``: a ClientHello naming NAME gets a RST (the TLS handshake fails with
  ``connection_reset``).
- ``--blockpage NAME``: an HTTP request with ``Host: NAME`` gets a forged ``200`` response
  carrying the blockpage, with FIN (the client reads a complete blockpage).

Forged packets carry this box's own IP TTL (64, decremented by every router on the way back) and
IP IDs of its own: the packet-level test compares them with the server's (docs/packet.md).

    python -m tests.lab.tcpinject --queue 3 --rst a.lab.test --blockpage b.lab.test \\
        --blockpage-file tests/lab/www/blockpage.html
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from tests.lab.nfqueue import inject_on_path

TTL = 64
FIN, RST, PSH, ACK = 0x01, 0x04, 0x08, 0x10


@dataclass(frozen=True)
class Segment:
    """The fields of a client's IPv4/TCP packet the injector needs."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    payload: bytes


def parse(packet: bytes) -> Segment | None:
    """The TCP segment in an IPv4 packet, or None (not IPv4/TCP, truncated)."""
    if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_TCP:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if ihl < 20 or len(packet) < ihl + 20 or total > len(packet):
        return None
    sport, dport, seq, ack, offset = struct.unpack_from("!HHIIB", packet, ihl)
    start = ihl + (offset >> 4) * 4
    if start > total:
        return None
    return Segment(packet[12:16], packet[16:20], sport, dport, seq, ack, packet[start:total])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reply(seg: Segment, *, flags: int, payload: bytes, window: int, ident: int) -> bytes:
    """An IPv4/TCP packet from the segment's destination back to its source, in sequence."""
    tcp = struct.pack(
        "!HHIIBBHHH",
        seg.dport,
        seg.sport,
        seg.ack,
        (seg.seq + len(seg.payload)) & 0xFFFFFFFF,
        5 << 4,
        flags,
        window,
        0,
        0,
    )
    pseudo = seg.dst + seg.src + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp) + len(payload))
    csum = _checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, TTL, socket.IPPROTO_TCP, 0, seg.dst, seg.src
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + tcp + payload


def blockpage_response(page: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + page


def forge(
    packet: bytes, *, rst: frozenset[str], blockpage: frozenset[str], page: bytes, ident: int
) -> bytes | None:
    """The forged answer to a queued client packet, or None if no rule matches it."""
    seg = parse(packet)
    if seg is None or not seg.payload:
        return None
    if seg.dport == 443 and any(name.encode("ascii") in seg.payload for name in rst):
        return reply(seg, flags=RST | ACK, payload=b"", window=0, ident=ident)
    if seg.dport == 80:
        lowered = seg.payload.lower()
        for name in blockpage:
            if b"\r\nhost: " + name.lower().encode("ascii") + b"\r\n" in lowered:
                body = blockpage_response(page)
                return reply(seg, flags=PSH | ACK | FIN, payload=body, window=502, ident=ident)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--rst", action="append", default=[], metavar="NAME")
    parser.add_argument("--blockpage", action="append", default=[], metavar="NAME")
    parser.add_argument("--blockpage-file", type=Path, required=True)
    args = parser.parse_args(argv)
    rst, blockpage = frozenset(args.rst), frozenset(args.blockpage)
    page = args.blockpage_file.read_bytes()
    rng = random.Random()
    inject_on_path(
        args.queue,
        lambda packet: forge(
            packet, rst=rst, blockpage=blockpage, page=page, ident=rng.randrange(1, 0x10000)
        ),
        ready=f"tcp injector ready on queue {args.queue}: rst {sorted(rst)}, "
        f"blockpage {sorted(blockpage)}",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
