"""On-path DNS injector (runs in cp-isp): races a forged answer ahead of the real one.

iptables queues the matching DNS queries (string match on the query name) to NFQUEUE; for each
query this program sends a forged A answer from the queried resolver's address with a raw socket,
then lets the original query continue, so the client receives the forged answer first and the
real one afterwards on the same socket. DNS is exempt from conntrack in cp-isp (raw table
NOTRACK), so the forged reply and the later real exchange do not clash in conntrack.

    python -m tests.lab.injector --queue 1 --forge dns-injected.lab.test=198.18.2.10
"""

from __future__ import annotations

import argparse
import socket
import struct

import dns.exception
import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from tests.lab.nfqueue import inject_on_path


def forge(packet: bytes, table: dict[str, str]) -> bytes | None:
    """The forged IPv4/UDP reply for a queued query packet, or None if it is not targeted."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_UDP:
        return None
    ihl = (packet[0] & 0x0F) * 4
    src, dst = packet[12:16], packet[16:20]
    sport, dport = struct.unpack_from("!HH", packet, ihl)
    try:
        query = dns.message.from_wire(packet[ihl + 8 :])
    except dns.exception.DNSException:
        return None
    if not query.question:
        return None
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    if name not in table or question.rdtype != dns.rdatatype.A:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.answer.append(
        dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, dns.rdatatype.A, table[name])
    )
    payload = response.to_wire()
    udp = struct.pack("!HHHH", dport, sport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, dst, src)
    return ip + udp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--forge", action="append", default=[], metavar="NAME=IPV4")
    args = parser.parse_args(argv)
    table = dict(item.lower().split("=", 1) for item in args.forge)
    inject_on_path(
        args.queue,
        lambda packet: forge(packet, table),
        ready=f"injector ready on queue {args.queue}: {table}",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
