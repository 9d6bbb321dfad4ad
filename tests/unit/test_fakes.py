"""The fake network behaves like the real one where the probe can tell: each scripted behaviour,
seen through the real stages, gives the failure the real network gives (in virtual time)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio
import trio.testing

from probe.config import Timeouts
from probe.stages import dns, http, tcp, tls
from probe.trace import Trace
from tests.fakes import servers as fs
from tests.fakes.network import (
    FakeNetwork,
    Host,
    dropped,
    fake_network,
    refused,
    serve,
    unreachable,
)
from tests.unit import servers

T = Timeouts(connect=4.0, tls=5.0, http=6.0, dns=3.0, dns_listen_window=0.5)


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


async def _connect_tls(
    trace: Trace, net: FakeNetwork, certs: servers.Certs, server_name: str
) -> tls.TLSResult:
    """TCP then TLS to 192.0.2.1:443 with ``server_name``, through the stages."""
    conn = await tcp.connect(trace, "192.0.2.1", 443, timeouts=T, transaction_id=1, net=net)
    assert conn.value is not None
    return await tls.handshake(
        trace,
        conn.value,
        address="192.0.2.1:443",
        server_name=server_name,
        ssl_context=tls.make_ssl_context(ca_file=certs.ca_file),
        timeouts=T,
        transaction_id=1,
        net=net,
    )


@pytest.mark.parametrize(
    ("endpoint", "failure", "elapsed"),
    [
        (refused(delay=0.25), "connection_refused", 0.25),
        (unreachable(), "host_unreachable", 0.0),
        (dropped(), "generic_timeout_error", 4.0),
    ],
)
async def test_connect_outcomes(
    autojump_clock: trio.testing.MockClock, endpoint: object, failure: str, elapsed: float
) -> None:
    trace = Trace()
    async with fake_network(endpoints={"192.0.2.1:443": endpoint}) as net:  # type: ignore[dict-item]
        res = await tcp.connect(trace, "192.0.2.1", 443, timeouts=T, transaction_id=1, net=net)
    assert (res.value, res.failure) == (None, failure)
    assert res.t - res.t0 == elapsed
    assert [(c.ip, c.port) for c in net.connects] == [("192.0.2.1", 443)]


async def test_unscripted_address_is_unreachable_and_logged() -> None:
    async with fake_network() as net:
        res = await tcp.connect(Trace(), "192.0.2.9", 80, timeouts=T, transaction_id=1, net=net)
    assert res.failure == "network_unreachable"
    assert net.connected_to("192.0.2.9")


async def test_tls_then_http_over_memory(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    log = fs.HTTPLog()
    site = fs.tls(certs.server_context("site.test"), fs.http(fs.page("Hello"), log))
    trace = Trace()
    async with fake_network(endpoints={"192.0.2.1:443": serve(site)}) as net:
        session = await _connect_tls(trace, net, certs, "site.test")
        assert session.ok and session.value is not None
        got = await http.get(
            trace,
            session.value,
            url="https://site.test/",
            address="192.0.2.1:443",
            alpn="http/1.1",
            headers=[],
            timeouts=T,
            body_cap=1 << 16,
            transaction_id=1,
        )
    assert got.ok and got.value.status == 200 and b"<title>Hello</title>" in got.value.body
    assert [r.host for r in log.requests] == ["site.test"]
    assert trace.tls_handshakes[0].tls_version == "TLSv1.3"


@pytest.mark.parametrize(
    ("action", "failure", "elapsed"),
    [("reset", "connection_reset", 0.0), ("drop", "generic_timeout_error", 5.0),
     ("close", "eof_error", 0.0)],
)  # fmt: skip
async def test_sni_censor(
    autojump_clock: trio.testing.MockClock,
    certs: servers.Certs,
    action: str,
    failure: str,
    elapsed: float,
) -> None:
    site = fs.tls(certs.server_context("blocked.test"), fs.http(fs.page("x")))
    censored = fs.sni_censor({"blocked.test"}, action=action, then=site)
    trace = Trace()
    async with fake_network(endpoints={"192.0.2.1:443": serve(censored)}) as net:
        res = await _connect_tls(trace, net, certs, "blocked.test")
    assert (res.value, res.failure, res.operation) == (None, failure, "tls_handshake")
    assert res.t - res.t0 == elapsed


async def test_http_reset_after_request_and_body_stall(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def respond(request: fs.Request) -> fs.Reply:
        if request.target == "/stall":
            return fs.Reply(script=[b"x" * 100, fs.HANG])
        return fs.Reply(instead=fs.RESET)

    trace = Trace()
    results = []
    async with fake_network(endpoints={"192.0.2.1:80": serve(fs.http(respond))}) as net:
        for tid, path in enumerate(("/rst", "/stall"), start=1):
            conn = await tcp.connect(
                trace, "192.0.2.1", 80, timeouts=T, transaction_id=tid, net=net
            )
            assert conn.value is not None
            results.append(
                await http.get(
                    trace,
                    conn.value,
                    url=f"http://site.test{path}",
                    address="192.0.2.1:80",
                    alpn="",
                    headers=[],
                    timeouts=T,
                    body_cap=1 << 16,
                    transaction_id=tid,
                )
            )
    rst, stall = results
    assert (rst.failure, rst.value.status) == ("connection_reset", 0)
    assert (stall.failure, stall.value.status, stall.value.body) == (
        "generic_timeout_error", 200, b"x" * 100,
    )  # fmt: skip
    assert stall.t - stall.t0 == 6.0


async def test_getaddrinfo_and_udp_dns(autojump_clock: trio.testing.MockClock) -> None:
    def resolver(query: object) -> object:
        return [servers.answer(query, "192.0.2.66"), (0.2, servers.answer(query, "192.0.2.1"))]  # type: ignore[arg-type]

    trace = Trace()
    script = {
        "site.test": Host(["192.0.2.1", "2001:db8::1"], canonname="site.test"),
        "gone.test": Host(error=socket.EAI_NONAME),
    }
    async with fake_network(hosts=script, resolvers={"192.0.2.53:53": resolver}) as net:  # type: ignore[dict-item]
        ok = await dns.lookup_getaddrinfo(trace, "site.test", timeouts=T, net=net)
        gone = await dns.lookup_getaddrinfo(trace, "gone.test", timeouts=T, net=net)
        udp = await dns.lookup_udp(
            trace, "site.test", resolver="192.0.2.53:53", timeouts=T, net=net
        )
    assert ok.addresses == ["192.0.2.1", "2001:db8::1"] and ok.ok
    assert gone.failure == "dns_nxdomain_error"
    assert udp.addresses == ["192.0.2.66"]  # the first answer wins; the late one is kept
    assert [d.answers[0].ipv4 for d in trace.dns_duplicates if d.answers] == ["192.0.2.1"]
    assert net.lookups == ["site.test", "gone.test"]


async def test_unscripted_resolver_is_port_unreachable() -> None:
    async with fake_network() as net:
        res = await dns.lookup_udp(Trace(), "x.test", resolver="192.0.2.53:53", timeouts=T, net=net)
    assert res.failure == "connection_refused"
