"""probe.stages.dns against the real system resolver (localhost) and real loopback DNS servers."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any

import dns.message
import dns.rdatatype
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from probe.config import Timeouts
from probe.failures import is_failure_string
from probe.net import AddrInfo, TrioNetwork
from probe.stages.dns import (
    DUPLICATE_TAG,
    lookup_getaddrinfo,
    lookup_udp,
    parse_reply,
    system_resolver,
)
from probe.trace import Trace
from tests.fakes.network import Host, fake_network
from tests.unit import servers

FAST = Timeouts(dns=2.0, dns_listen_window=0.05)


# --- getaddrinfo ----------------------------------------------------------------------------


async def test_getaddrinfo_localhost() -> None:
    trace = Trace()
    res = await lookup_getaddrinfo(trace, "localhost", timeouts=FAST, tags=["depth=0"])
    assert res.failure is None
    assert "127.0.0.1" in res.addresses
    (q,) = trace.queries
    assert (q.engine, q.query_type, q.resolver_address, q.hostname) == (
        "getaddrinfo",
        "ANY",
        "",
        "localhost",
    )
    assert q.failure is None and q.getaddrinfo_error is None
    assert q.tags == ["depth=0"] and q.transaction_id == 1
    assert q.answers is not None
    assert any(a.answer_type == "A" and a.ipv4 == "127.0.0.1" for a in q.answers)
    assert any(a.answer_type == "CNAME" and a.hostname for a in q.answers)
    assert 0 <= q.t0 <= q.t


class _NumericOnly(TrioNetwork):
    """The real libc getaddrinfo, restricted so that it never sends a query."""

    async def getaddrinfo(self, host: str, *, family: int = 0) -> list[AddrInfo]:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        return [AddrInfo(f, str(a[0]), c) for f, _, _, c, a in infos]


async def test_getaddrinfo_failure_keeps_the_code() -> None:
    trace = Trace()
    res = await lookup_getaddrinfo(trace, "nxdomain.test", timeouts=FAST, net=_NumericOnly())
    assert (res.addresses, res.failure, res.operation) == ([], "dns_nxdomain_error", "resolve")
    (q,) = trace.queries
    assert q.failure == "dns_nxdomain_error"
    assert q.getaddrinfo_error == socket.EAI_NONAME
    assert q.answers is None
    assert (res.transaction_id, res.t0, res.t) == (q.transaction_id, q.t0, q.t)


async def test_getaddrinfo_timeout(autojump_clock: trio.testing.MockClock) -> None:
    trace = Trace()
    async with fake_network(hosts={"slow.test": Host(hang=True)}) as net:
        res = await lookup_getaddrinfo(trace, "slow.test", timeouts=Timeouts(dns=3.0), net=net)
    assert res.failure == "generic_timeout_error"
    (q,) = trace.queries
    assert q.t - q.t0 == 3.0


# --- UDP ------------------------------------------------------------------------------------


def _real(query: dns.message.Message) -> dns.message.Message:
    return servers.answer(query, "192.0.2.1", "2001:db8::1")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_udp_success(host: str) -> None:
    trace = Trace()
    async with servers.dns_server(_real, host=host) as srv:
        res = await lookup_udp(
            trace, "www.example.test", resolver=srv.address, timeouts=FAST, tags=["x"]
        )
    assert res.failure is None and res.rcode == 0
    assert res.addresses == ["192.0.2.1", "2001:db8::1"]
    assert sorted(q.query_type for q in trace.queries) == ["A", "AAAA"]
    assert sorted(q.question[0].rdtype for q in srv.queries) == [1, 28]
    for q in trace.queries:
        assert q.engine == "udp" and q.resolver_address == srv.address
        assert q.failure is None and q.rcode == 0 and q.tags == ["x"]
        assert q.answers is not None and q.answers[0].ttl == 300
        assert q.raw_response is not None
        reply = dns.message.from_wire(base64.b64decode(q.raw_response))
        assert reply.question[0].name.to_text() == "www.example.test."
    assert {q.transaction_id for q in trace.queries} == {1, 2}
    assert trace.dns_duplicates == []


@pytest.mark.parametrize(
    ("rcode", "failure"),
    [(3, "dns_nxdomain_error"), (2, "dns_servfail_error"), (5, "dns_refused_error"),
     (4, "dns_server_misbehaving")],
)  # fmt: skip
async def test_udp_rcode(rcode: int, failure: str) -> None:
    trace = Trace()
    async with servers.dns_server(lambda q: servers.rcode_reply(q, rcode)) as srv:
        res = await lookup_udp(trace, "blocked.test", resolver=srv.address, timeouts=FAST)
    assert (res.addresses, res.failure, res.rcode) == ([], failure, rcode)
    assert all(q.failure == failure and q.rcode == rcode for q in trace.queries)
    # each query's own result: the reply that was accepted, its failure bound to the round trip
    events = {q.transaction_id: q for q in trace.queries}
    for exchange in res.exchanges:
        event = events[exchange.transaction_id]
        assert exchange.value is not None and exchange.value.rcode == rcode
        assert exchange.error is not None
        assert (exchange.error.failure, exchange.error.operation) == (failure, "dns_round_trip")
        assert (exchange.transaction_id, exchange.t0, exchange.t) == (
            event.transaction_id, event.t0, event.t,
        )  # fmt: skip


async def test_udp_timeout_result_has_no_reply(autojump_clock: trio.testing.MockClock) -> None:
    async with fake_network(resolvers={"192.0.2.53:53": lambda q: None}) as net:
        res = await lookup_udp(
            Trace(), "x.test", resolver="192.0.2.53:53", timeouts=Timeouts(dns=3.0), net=net
        )
    assert res.failure == "generic_timeout_error"
    assert [e.value for e in res.exchanges] == [None, None]
    assert all(e.t - e.t0 == 3.0 for e in res.exchanges)


async def test_udp_no_answer() -> None:
    trace = Trace()
    async with servers.dns_server(lambda q: servers.answer(q)) as srv:
        res = await lookup_udp(trace, "empty.test", resolver=srv.address, timeouts=FAST)
    assert res.failure == "dns_no_answer" and res.addresses == []
    assert all(q.failure == "dns_no_answer" and q.answers is None for q in trace.queries)


async def test_udp_only_a_record_is_success() -> None:
    trace = Trace()
    async with servers.dns_server(lambda q: servers.answer(q, "192.0.2.7")) as srv:
        res = await lookup_udp(trace, "v4only.test", resolver=srv.address, timeouts=FAST)
    assert res.failure is None and res.addresses == ["192.0.2.7"]
    failures = {q.query_type: q.failure for q in trace.queries}
    assert failures == {"A": None, "AAAA": "dns_no_answer"}


async def test_udp_injection_both_replies_recorded() -> None:
    """A forged reply first, the real one 50 ms later: the stub uses the first, both are kept."""

    def censor(query: dns.message.Message) -> list[Any]:
        forged = servers.answer(query, "10.10.34.35", "fd00::35")
        return [forged, (0.05, _real(query))]

    trace = Trace()
    timeouts = Timeouts(dns=2.0, dns_listen_window=0.5)
    async with servers.dns_server(censor) as srv:
        res = await lookup_udp(trace, "blocked.test", resolver=srv.address, timeouts=timeouts)
    assert res.addresses == ["10.10.34.35", "fd00::35"]
    accepted = {q.query_type: q for q in trace.queries}
    assert accepted["A"].answers is not None and accepted["A"].answers[0].ipv4 == "10.10.34.35"
    dups = {q.query_type: q for q in trace.dns_duplicates}
    assert set(dups) == {"A", "AAAA"}
    assert dups["A"].answers is not None and dups["A"].answers[0].ipv4 == "192.0.2.1"
    for kind in ("A", "AAAA"):
        assert DUPLICATE_TAG in (dups[kind].tags or [])
        assert dups[kind].failure is None
        assert dups[kind].transaction_id == accepted[kind].transaction_id
        assert dups[kind].t > accepted[kind].t


async def test_udp_wrong_query_id_is_not_accepted() -> None:
    def spoofer(query: dns.message.Message) -> list[Any]:
        bad = servers.answer(query, "10.9.9.9", "fd00::9")
        bad.id = (query.id + 1) % 65536
        return [bad, (0.02, _real(query))]

    trace = Trace()
    async with servers.dns_server(spoofer) as srv:
        res = await lookup_udp(trace, "www.example.test", resolver=srv.address, timeouts=FAST)
    assert res.failure is None
    assert res.addresses == ["192.0.2.1", "2001:db8::1"]
    assert len(trace.dns_duplicates) == 2
    for dup in trace.dns_duplicates:
        assert dup.failure == "dns_reply_with_wrong_query_id"
        assert DUPLICATE_TAG in (dup.tags or []) and dup.raw_response


async def test_udp_malformed_reply() -> None:
    garbage = b"\x00\x00\xff\xff not dns at all"

    def handler(query: dns.message.Message) -> bytes:
        return query.id.to_bytes(2, "big") + garbage[2:]

    trace = Trace()
    async with servers.dns_server(handler) as srv:
        res = await lookup_udp(trace, "x.test", resolver=srv.address, timeouts=FAST)
    assert res.failure == "dns_server_misbehaving"
    for q in trace.queries:
        assert q.failure == "dns_server_misbehaving" and q.rcode is None
        assert q.raw_response is not None
        assert base64.b64decode(q.raw_response).endswith(garbage[2:])


async def test_udp_dropped_times_out(autojump_clock: trio.testing.MockClock) -> None:
    trace = Trace()
    async with servers.dns_server(lambda q: None) as srv:
        res = await lookup_udp(
            trace, "dropped.test", resolver=srv.address, timeouts=Timeouts(dns=4.0)
        )
    assert res.failure == "generic_timeout_error" and res.rcode is None
    assert len(trace.queries) == 2
    for q in trace.queries:
        assert q.failure == "generic_timeout_error"
        assert q.t - q.t0 == pytest.approx(4.0)
        assert q.raw_response is None and q.answers is None


async def test_udp_port_unreachable_is_connection_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    trace = Trace()
    res = await lookup_udp(trace, "x.test", resolver=f"127.0.0.1:{port}", timeouts=FAST)
    assert res.failure == "connection_refused"


async def test_bad_resolver_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        await lookup_udp(Trace(), "x.test", resolver="dns.example:53", timeouts=FAST)


async def test_outer_cancel_is_recorded_and_propagates() -> None:
    trace = Trace()
    async with servers.dns_server(lambda q: None) as srv:
        with trio.move_on_after(0.05) as outer:
            await lookup_udp(trace, "x.test", resolver=srv.address, timeouts=FAST)
    assert outer.cancelled_caught
    assert [q.failure for q in trace.queries] == ["interrupted", "interrupted"]


# --- parsing is total -----------------------------------------------------------------------


@given(raw=st.binary(max_size=600), qid=st.integers(min_value=0, max_value=65535))
def test_parse_reply_never_crashes(raw: bytes, qid: int) -> None:
    parsed = parse_reply(raw, query_id=qid, rdtype=dns.rdatatype.A)
    assert parsed.failure is None or is_failure_string(parsed.failure)
    if parsed.failure is None:
        assert parsed.addresses


def test_parse_reply_skips_records_of_a_class_it_cannot_read() -> None:
    """An A record of class 257 is opaque to dnspython (GenericRdata, no address): found by
    the mutation test below (byte 38 = the answer's class)."""
    query = dns.message.make_query("www.example.test", "A")
    wire = bytearray(servers.answer(query, "192.0.2.1").to_wire())
    wire[38] = 1
    parsed = parse_reply(bytes(wire), query_id=query.id, rdtype=dns.rdatatype.A)
    assert (parsed.failure, parsed.addresses) == ("dns_no_answer", [])


@given(data=st.data())
def test_parse_reply_on_mutated_real_replies(data: st.DataObject) -> None:
    query = dns.message.make_query("www.example.test", "A")
    wire = bytearray(servers.answer(query, "192.0.2.1").to_wire())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        pos = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
        wire[pos] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(wire)))
    parsed = parse_reply(bytes(wire[:cut]), query_id=query.id, rdtype=dns.rdatatype.A)
    assert parsed.failure is None or is_failure_string(parsed.failure)


# --- resolv.conf ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver 10.0.0.1\n", "192.0.2.53:53"),
        ("nameserver fe80::1%eth0\n", "[fe80::1]:53"),
        ("nameserver not-an-ip\n", None),
        ("", None),
    ],
)
def test_system_resolver(tmp_path: Path, text: str, expected: str | None) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    assert system_resolver(path) == expected


def test_system_resolver_missing_file(tmp_path: Path) -> None:
    assert system_resolver(tmp_path / "nope") is None
