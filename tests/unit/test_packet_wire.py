"""probe.packet.wire (demultiplexing and recorded facts), probe.packet.hops (what may be
published) and probe.packet.bpf (the filter programs' shape): pure, no root.

Packets are built with scapy, the dissector the probe itself uses; hostile bytes come from
hypothesis: neither function may raise on anything a network can deliver.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket

import dns.message
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP

from probe.packet import bpf
from probe.packet.hops import no_lookup, parse_asn, policy
from probe.packet.wire import demux, describe, dns_facts, prefix

PEER = "192.0.2.80"
ME = "198.51.100.2"
PACKED = socket.inet_aton(PEER)


def _tcp_reply(flags: str = "SA", payload: bytes = b"") -> bytes:
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (5, 6)), ("NOP", None), ("WScale", 7)]
    pkt = IP(src=PEER, dst=ME, ttl=57, id=4242, flags="DF") / TCP(
        sport=443, dport=40001, flags=flags, window=64240, options=opts
    )
    return bytes(pkt / payload) if payload else bytes(pkt)


def _time_exceeded(router: str, *, quoted_dst: str = PEER, proto: str = "tcp") -> bytes:
    quoted = IP(src=ME, dst=quoted_dst, ttl=1)
    inner = TCP(sport=40002, dport=443) if proto == "tcp" else UDP(sport=40003, dport=53)
    return bytes(IP(src=router, dst=ME, ttl=63) / ICMP(type=11, code=0) / quoted / inner)


def test_a_peer_s_tcp_packet_belongs_to_our_port() -> None:
    assert demux(_tcp_reply(), PACKED) == ("tcp", 40001)
    other = bytes(IP(src="192.0.2.81", dst=ME) / TCP(sport=443, dport=40001))
    assert demux(other, PACKED) is None


def test_an_icmp_error_belongs_to_the_flow_it_quotes() -> None:
    assert demux(_time_exceeded("81.200.0.1"), PACKED) == ("tcp", 40002)
    assert demux(_time_exceeded("81.200.0.1", proto="udp"), PACKED) == ("udp", 40003)
    assert demux(_time_exceeded("81.200.0.1", quoted_dst="192.0.2.99"), PACKED) is None
    echo = bytes(IP(src="81.200.0.1", dst=ME) / ICMP(type=0) / (b"12345678" * 4))
    assert demux(echo, PACKED) is None


def test_recorded_facts_of_a_syn_ack() -> None:
    facts = describe(_tcp_reply(), t=0.1234567)
    assert facts == {
        "t": 0.123457,
        "src": PEER,
        "ip_ttl": 57,
        "ip_id": 4242,
        "ip_df": True,
        "kind": "tcp",
        "tcp_flags": "SA",
        "tcp_window": 64240,
        "tcp_options": [
            ["MSS", 1460],
            ["SAckOK", True],
            ["Timestamp", [5, 6]],
            ["NOP", None],
            ["WScale", 7],
        ],
        "payload_length": 0,
    }


def test_only_a_status_line_or_a_record_header_of_a_payload_is_kept() -> None:
    page = b"HTTP/1.1 200 OK\r\nLocation: http://x/?ip=198.51.100.2\r\n\r\n" + b"x" * 3000
    facts = describe(_tcp_reply("FPA", page), t=0)
    assert facts["payload_length"] == len(page)
    assert facts["payload_prefix"] == "HTTP/1.1 200 OK"
    assert facts["payload_sha256"] == hashlib.sha256(page).hexdigest()
    assert ME not in str(facts)
    hello = describe(_tcp_reply("PA", b"\x16\x03\x03\x00\x7a\x02\xff" + b"\x00" * 40), t=0)
    assert hello["payload_prefix"] == {"format": "base64", "data": "FgMDAHoC/wAAAAAAAAAAAA=="}
    assert prefix(b"HTTP/1.1 " + b"9" * 200) == b"HTTP/1.1 " + b"9" * 55


def test_recorded_facts_of_an_icmp_error_and_a_dns_answer() -> None:
    facts = describe(_time_exceeded("81.200.0.1"), t=1)
    assert (facts["kind"], facts["src"], facts["icmp_type"], facts["quoted_ttl"]) == (
        "icmp",
        "81.200.0.1",
        11,
        1,
    )
    query = dns.message.make_query("blocked.example", dns.rdatatype.A)
    answer = dns.message.make_response(query)
    answer.answer.append(
        dns.rrset.from_text("blocked.example.", 60, "IN", "A", "10.10.34.35", "10.10.34.36")
    )
    wire = answer.to_wire()
    udp = bytes(IP(src=PEER, dst=ME, ttl=64) / UDP(sport=53, dport=40003) / wire)
    facts = describe(udp, t=2)
    assert facts["kind"] == "udp" and facts["payload_length"] == len(wire)
    assert "payload_prefix" not in facts
    assert facts["dns"] == {"id": query.id, "rcode": 0, "answers": ["10.10.34.35", "10.10.34.36"]}
    assert dns_facts(b"\x00\x01garbage") is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_demux_and_describe_never_raise(raw: bytes) -> None:
    demux(raw, PACKED)
    facts = describe(raw, t=0.0)
    assert "kind" in facts


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_describe_survives_corrupted_real_packets(offset: int, junk: bytes) -> None:
    for raw in (_tcp_reply("FPA", b"hello"), _time_exceeded("81.200.0.1")):
        broken = raw[:offset] + junk + raw[offset + len(junk) :]
        demux(broken, PACKED)
        assert "kind" in describe(broken, t=0.0)


# --- hops: what may be published --------------------------------------------------------------

ASNS = {"81.200.0.1": (64500, "Access ISP"), "81.200.0.9": (64510, "Backbone")}


def _lookup(ip: str) -> tuple[int | None, str | None]:
    return ASNS.get(ip, (None, None))


def test_bogon_unknown_and_own_network_routers_are_withheld() -> None:
    routers = ["192.168.1.1", "81.200.0.1", "81.200.0.5", "81.200.0.9"]
    p = policy(routers, own_asn=64500, lookup=_lookup)
    assert p.describe("192.168.1.1")["src_withheld"] == "bogon"
    assert p.describe("100.64.0.1")["src_withheld"] == "bogon"  # carrier-grade NAT
    assert p.describe("81.200.0.1")["src_withheld"] == "own-network"
    assert p.describe("81.200.0.5")["src_withheld"] == "unknown-network"
    assert p.describe("81.200.0.9") == {
        "src": "81.200.0.9",
        "src_asn": 64510,
        "src_as_org": "Backbone",
        "src_withheld": None,
    }
    for ip in ("192.168.1.1", "81.200.0.1", "81.200.0.5"):
        assert p.describe(ip)["src"] is None and p.describe(ip)["src_asn"] is None


def test_without_the_volunteer_s_asn_the_first_known_network_is_theirs() -> None:
    routers = ["10.0.0.1", "81.200.0.5", "81.200.0.1", "81.200.0.9"]
    p = policy(routers, own_asn=None, lookup=_lookup)
    assert p.own_asns == frozenset({64500})
    assert p.describe("81.200.0.1")["src_withheld"] == "own-network"
    assert p.describe("81.200.0.9")["src"] == "81.200.0.9"


def test_without_an_asn_database_nothing_is_published() -> None:
    p = policy(["81.200.0.1", "81.200.0.9"], own_asn=64500, lookup=no_lookup)
    assert {p.describe(ip)["src_withheld"] for ip in ASNS} == {"unknown-network"}


def test_the_lab_range_is_public_only_when_declared() -> None:
    lab = (ipaddress.ip_network("198.18.0.0/15"),)
    known = {"198.18.3.2": (64510, "Lab national backbone")}

    def lookup(ip: str) -> tuple[int | None, str | None]:
        return known.get(ip, (None, None))

    assert policy([], own_asn=64500, lookup=lookup).describe("198.18.3.2")["src"] is None
    declared = policy([], own_asn=64500, lookup=lookup, public_ranges=lab)
    assert declared.describe("198.18.3.2")["src"] == "198.18.3.2"


def test_parse_asn() -> None:
    assert [parse_asn(x) for x in ("AS64500", "as12389", "64500", "AS0", "ASx", "")] == [
        64500,
        12389,
        64500,
        None,
        None,
        None,
    ]


# --- bpf: the programs' shape (run on real sockets in test_packet_loopback) ---------------------


def test_bpf_programs_end_in_returns_and_jump_inside() -> None:
    for program in (bpf.from_source("192.0.2.80"), bpf.icmp_errors()):
        assert program[-1][0] == 0x06 and program[-2][0] == 0x06
        for i, (code, jt, jf, _) in enumerate(program):
            if code & 0x07 == 0x05:  # a jump: both targets inside the program
                assert i + 1 + max(jt, jf) < len(program)
    assert bpf.from_source("192.0.2.80")[1][3] == 0xC0000250
