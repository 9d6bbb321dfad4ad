"""Captured IPv4 packets: which flow they belong to (struct, cheap) and what we record (scapy).

:func:`demux` runs on every captured packet and only reads fixed offsets: a TCP or UDP packet
from the traced peer belongs to the flow of its destination port; an ICMP error belongs to the
flow it quotes (the quoted packet went to the peer from that source port). :func:`describe` runs
on the packets kept and turns each into the JSON facts of docs/packet.md with scapy's dissectors
(imported here, on first use): IP TTL, IP ID, DF, TCP flags, window and options, the payload's
length, digest and first bytes (an HTTP status line; :func:`prefix`), the ICMP type/code and the
TTL left in the quoted header, a DNS answer's id, rcode and addresses. Both are total: malformed
bytes give None or the fields that could be read.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from typing import Any

import dns.exception
import dns.message
import dns.rdatatype

from probe.archival import BinaryData, maybe_binary

#: (transport, our local port): "tcp" or "udp"
Key = tuple[str, int]

ICMP_UNREACHABLE = 3
ICMP_TIME_EXCEEDED = 11
#: bytes of a non-HTTP payload kept: a TLS record header and its handshake message type
PREFIX = 16
#: an HTTP status line is kept up to this many bytes
STATUS_LINE_CAP = 64

_TRANSPORTS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}


def demux(raw: bytes, peer: bytes) -> Key | None:
    """The flow of a captured packet, or None when it is not about a flow to ``peer``.

    ``peer`` is the packed IPv4 address of the traced server or resolver.
    """
    if len(raw) < 20 or raw[0] >> 4 != 4:
        return None
    ihl = (raw[0] & 0x0F) * 4
    proto = raw[9]
    if proto in _TRANSPORTS:
        if raw[12:16] != peer or len(raw) < ihl + 4:
            return None
        return _TRANSPORTS[proto], struct.unpack_from("!H", raw, ihl + 2)[0]
    if proto != socket.IPPROTO_ICMP or len(raw) < ihl + 8:
        return None
    if raw[ihl] not in (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED):
        return None
    inner = raw[ihl + 8 :]
    if len(inner) < 20 or inner[0] >> 4 != 4:
        return None
    inner_ihl = (inner[0] & 0x0F) * 4
    inner_proto = inner[9]
    if inner_proto not in _TRANSPORTS or inner[16:20] != peer or len(inner) < inner_ihl + 2:
        return None
    return _TRANSPORTS[inner_proto], struct.unpack_from("!H", inner, inner_ihl)[0]


def describe(raw: bytes, *, t: float) -> dict[str, Any]:
    """The recorded facts of one captured packet (docs/packet.md, "replies")."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror

    facts: dict[str, Any] = {"t": round(t, 6)}
    try:
        pkt = IP(raw)
        facts.update(
            src=pkt.src, ip_ttl=int(pkt.ttl), ip_id=int(pkt.id), ip_df=bool(int(pkt.flags) & 2)
        )
        if ICMP in pkt:
            icmp = pkt[ICMP]
            facts.update(kind="icmp", icmp_type=int(icmp.type), icmp_code=int(icmp.code))
            if IPerror in pkt:
                facts["quoted_ttl"] = int(pkt[IPerror].ttl)
        elif TCP in pkt:
            tcp = pkt[TCP]
            payload = bytes(tcp.payload)
            facts.update(
                kind="tcp",
                tcp_flags=str(tcp.flags),
                tcp_window=int(tcp.window),
                tcp_options=[_option(name, value) for name, value in tcp.options],
                payload_length=len(payload),
            )
            if payload:
                facts["payload_prefix"] = _maybe_binary(prefix(payload))
                facts["payload_sha256"] = hashlib.sha256(payload).hexdigest()
        elif UDP in pkt:
            payload = bytes(pkt[UDP].payload)
            facts.update(kind="udp", payload_length=len(payload))
            facts["dns"] = dns_facts(payload)
            if payload:
                facts["payload_sha256"] = hashlib.sha256(payload).hexdigest()
        else:
            facts["kind"] = "other"
    except Exception as exc:  # scapy dissection is best effort on hostile bytes
        facts.setdefault("kind", "other")
        facts["x_parse_error"] = type(exc).__name__
    return facts


def prefix(payload: bytes) -> bytes:
    """What of a payload is recorded: an HTTP response's status line, or the first bytes.

    Never more: a response's headers and body may carry the volunteer's public address (a
    blockpage echoing it, a redirect naming it), which a follow-up run without geolocation could
    not scrub. The web measurement already holds the body; the digest lets researchers match
    identical injected responses across measurements.
    """
    if payload.startswith(b"HTTP/"):
        return payload[:STATUS_LINE_CAP].split(b"\r\n", 1)[0]
    return payload[:PREFIX]


def dns_facts(payload: bytes) -> dict[str, Any] | None:
    """id, rcode and answers (A/AAAA/CNAME as text) of a DNS message, or None."""
    try:
        msg = dns.message.from_wire(payload)
    except (dns.exception.DNSException, ValueError, IndexError):
        return None
    answers: list[str] = []
    for rrset in msg.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME):
            answers.extend(r.to_text() for r in rrset)
    return {"id": msg.id, "rcode": msg.rcode(), "answers": sorted(answers)}


def _maybe_binary(raw: bytes) -> str | dict[str, str]:
    """OONI's MaybeBinaryData as JSON: the text if UTF-8, else ``{"format": "base64", ...}``."""
    value = maybe_binary(raw)
    return value.model_dump() if isinstance(value, BinaryData) else value


def _option(name: Any, value: Any) -> list[Any]:
    """One TCP option as ``[name, value]`` with a JSON value."""
    label = name if isinstance(name, str) else int(name)
    if value is None or isinstance(value, bool | int):
        out: Any = value
    elif isinstance(value, bytes):
        out = value.hex() if value else True
    elif isinstance(value, tuple | list):
        out = [v if isinstance(v, int) else repr(v) for v in value]
    else:
        out = repr(value)
    return [label, out]
