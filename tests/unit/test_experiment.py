"""measure_web on the fake network, in virtual time: races, redirects, diagnostics, timeouts.

Each test scripts a small internet (tests/fakes), measures one URL with the real orchestrator
and the real stages, then checks the recorded facts (and, where the facts decide one, the
verdict). Under ``autojump_clock`` every duration is exact: a timeout takes the configured
seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from probe.analysis import analyze
from probe.config import Timeouts
from probe.experiment import measure_web
from tests.conformance.check import check_with_oonidata
from tests.fakes import servers as fs
from tests.fakes.context import TIMEOUTS, run_context
from tests.fakes.network import Host, dropped, fake_network, refused, serve
from tests.unit import servers

A, B, C = "198.18.1.1", "198.18.1.2", "198.18.1.3"


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


def _tags(event: dict[str, Any]) -> list[str]:
    return list(event.get("tags") or [])


def _diag(events: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if f"x_diag={name}" in _tags(e)]


def _main(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if not any(t.startswith("x_diag=") for t in _tags(e))]


def https_site(certs: servers.Certs, name: str, reply: fs.Reply | None = None) -> fs.Handler:
    return fs.tls(certs.server_context(name), fs.http(reply or fs.page(name)))


def slow_reset_after_hello(delay: float) -> fs.Handler:
    """A censor that lets the ClientHello sit for ``delay`` seconds, then resets (whatever SNI:
    the point is that another address's handshake finishes first)."""

    async def handler(stream: trio.abc.Stream) -> None:
        await stream.receive_some()
        await trio.sleep(delay)
        fs.reset(stream)

    return handler


async def measure(
    url: str, net: Any, certs: servers.Certs, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx = run_context(net, ca_file=certs.ca_file, **kwargs)
    msmt = await measure_web(url, ctx=ctx)
    return msmt, msmt["test_keys"]


# --- the two-address race (issue 13) -----------------------------------------------------------


async def test_sni_retry_follows_the_address_whose_handshake_failed(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """Two addresses: A's handshake is reset 0.5 s after the ClientHello, B's succeeds first.
    The SNI retry must go to A. (The old orchestrator read ``tls_handshakes[before:][0]`` after
    A's handshake, which was B's successful event, and ran no retry at all.)"""
    endpoints = {
        f"{A}:443": serve(slow_reset_after_hello(0.5)),
        f"{B}:443": serve(https_site(certs, "site.test")),
    }
    async with fake_network(endpoints=endpoints, hosts={"site.test": [A, B]}) as net:
        _, tk = await measure("https://site.test/", net, certs)
    main = _main(tk["tls_handshakes"])
    by_address = {e["address"]: e["failure"] for e in main}
    assert by_address == {f"{A}:443": "connection_reset", f"{B}:443": None}
    # B finished first: the trace order is the race's order
    assert [e["address"] for e in main] == [f"{B}:443", f"{A}:443"]
    retries = _diag(tk["tls_handshakes"], "sni_retry")
    assert [e["address"] for e in retries] == [f"{A}:443"]
    assert retries[0]["server_name"] == "example.org" and retries[0]["no_tls_verify"] is True
    # the page came over B
    assert [r["address"] for r in _main(tk["requests"])] == [f"{B}:443"]
    assert tk["requests"][0]["response"]["code"] == 200


async def test_each_address_is_tried_once_in_parallel(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    endpoints = {
        f"{A}:443": refused(delay=1.0),
        f"{B}:443": serve(https_site(certs, "site.test"), delay=2.0),
        f"{C}:443": dropped(),
    }
    async with fake_network(endpoints=endpoints, hosts={"site.test": [A, B, C]}) as net:
        _, tk = await measure("https://site.test/", net, certs)
    # one attempt per address, all started at once (virtual time 0), no retries
    assert sorted((c.ip, c.t) for c in net.connects) == [(A, 0.0), (B, 0.0), (C, 0.0)]
    status = {e["ip"]: (e["status"]["failure"], e["t"] - e["t0"]) for e in tk["tcp_connect"]}
    assert status == {
        A: ("connection_refused", 1.0),
        B: (None, 2.0),
        C: ("generic_timeout_error", TIMEOUTS.connect),
    }
    assert tk["requests"][0]["response"]["code"] == 200


# --- redirects ---------------------------------------------------------------------------------


async def test_redirect_chain_measures_every_hop(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    def first(request: fs.Request) -> fs.Reply:
        return fs.redirect("https://www.site.test/start")

    def second(request: fs.Request) -> fs.Reply:
        if request.target == "/start":
            return fs.redirect("/final?x=1", status=301)
        return fs.page("Final page")

    endpoints = {
        f"{A}:80": serve(fs.http(first)),
        f"{B}:443": serve(fs.tls(certs.server_context("www.site.test"), fs.http(second))),
    }
    hosts = {"site.test": [A], "www.site.test": [B]}
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        msmt, tk = await measure("http://site.test/", net, certs)
    urls = [r["request"]["url"] for r in reversed(tk["requests"])]
    assert urls == [
        "http://site.test/",
        "https://www.site.test/start",
        "https://www.site.test/final?x=1",
    ]
    depths = [[t for t in _tags(r) if t.startswith("depth=")] for r in reversed(tk["requests"])]
    assert depths == [["depth=0"], ["depth=1"], ["depth=2"]]
    # each hop resolved and connected again
    assert net.lookups == ["site.test", "www.site.test", "www.site.test"]
    assert [q["hostname"] for q in tk["queries"]] == net.lookups
    assert tk["x_failure"] is None and tk["requests"][0]["response"]["code"] == 200
    assert "classic" in _tags(tk["tcp_connect"][0]) and "classic" not in _tags(tk["tcp_connect"][1])
    assert check_with_oonidata([json.dumps(msmt)]) == []


async def test_redirect_loop_stops_at_max_redirects(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    def loop(request: fs.Request) -> fs.Reply:
        n = int(request.target.strip("/") or 0)
        return fs.redirect(f"/{n + 1}")

    async with fake_network(
        endpoints={f"{A}:80": serve(fs.http(loop))}, hosts={"site.test": [A]}
    ) as net:
        _, tk = await measure("http://site.test/", net, certs, max_redirects=3)
    assert len(tk["requests"]) == 4
    assert tk["x_failure"] == "unknown_failure: stopped after 3 redirects"
    assert tk["x_failed_operation"] == "http_round_trip"


async def test_redirect_without_a_host_is_an_invalid_location(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    async with fake_network(
        endpoints={f"{A}:80": serve(fs.http(fs.redirect("ftp:///nowhere")))},
        hosts={"site.test": [A]},
    ) as net:
        _, tk = await measure("http://site.test/", net, certs)
    assert tk["x_failure"] == "http_invalid_redirect_location_host"
    assert tk["x_failed_operation"] == "http_round_trip"


# --- the two diagnostic retries ----------------------------------------------------------------


async def test_sni_retry_tells_sni_filtering(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    site = https_site(certs, "blocked.test")
    censored = fs.sni_censor({"blocked.test"}, action=fs.RESET, then=site)
    async with fake_network(
        endpoints={f"{A}:443": serve(censored)}, hosts={"blocked.test": [A]}
    ) as net:
        msmt, tk = await measure("https://blocked.test/", net, certs)
    (main,) = _main(tk["tls_handshakes"])
    (retry,) = _diag(tk["tls_handshakes"], "sni_retry")
    assert main["failure"] == "connection_reset" and main["server_name"] == "blocked.test"
    assert retry["failure"] is None and retry["server_name"] == "example.org"
    assert retry["address"] == main["address"] and retry["transaction_id"] != main["transaction_id"]
    verdict = analyze(msmt)
    assert (verdict["x_rule_id"], verdict["x_outcome"]) == (
        "tls.sni_diag_reset", "tls/reset-after-clienthello",
    )  # fmt: skip


async def test_sni_retry_that_fails_too_needs_the_control(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """Without a control a server that resets every handshake looks the same as IP blocking
    (issue 16, item 4): no verdict; targeted/tls-reset-any-sni has the control's handshake."""
    async with fake_network(
        endpoints={f"{A}:443": serve(fs.rst_after(1))}, hosts={"blocked.test": [A]}
    ) as net:
        msmt, tk = await measure("https://blocked.test/", net, certs)
    assert [e["failure"] for e in _diag(tk["tls_handshakes"], "sni_retry")] == ["connection_reset"]
    assert analyze(msmt)["x_rule_id"] == "unknown.control_unavailable"


async def test_host_retry_tells_host_filtering(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    log = fs.HTTPLog()

    def respond(request: fs.Request) -> fs.Reply:
        if request.host == "blocked.test":
            return fs.Reply(instead=fs.RESET)
        return fs.page("default vhost")

    async with fake_network(
        endpoints={f"{A}:80": serve(fs.http(respond, log))}, hosts={"blocked.test": [A]}
    ) as net:
        msmt, tk = await measure("http://blocked.test/", net, certs)
    assert [r.host for r in log.requests] == ["blocked.test", "example.org"]
    (main,) = _main(tk["requests"])
    (retry,) = _diag(tk["requests"], "host_retry")
    assert main["failure"] == "connection_reset"
    assert retry["failure"] is None and retry["response"]["code"] == 200
    assert retry["request"]["headers"]["Host"] == "example.org"
    assert analyze(msmt)["x_rule_id"] == "http.host_diag_reset"


async def test_no_retry_after_an_answer(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    async with fake_network(
        endpoints={f"{A}:80": serve(fs.http(fs.Reply(status=500)))}, hosts={"site.test": [A]}
    ) as net:
        _, tk = await measure("http://site.test/", net, certs)
    assert _diag(tk["requests"], "host_retry") == [] and len(net.connects) == 1


# --- every timeout, in virtual time ------------------------------------------------------------


async def test_connect_timeout(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    async with fake_network(endpoints={f"{A}:443": dropped()}, hosts={"s.test": [A]}) as net:
        _, tk = await measure("https://s.test/", net, certs)
    (tcp,) = tk["tcp_connect"]
    assert tcp["status"]["failure"] == "generic_timeout_error"
    assert tcp["t"] - tcp["t0"] == TIMEOUTS.connect


async def test_tls_timeout(autojump_clock: trio.testing.MockClock, certs: servers.Certs) -> None:
    censored = fs.sni_censor({"s.test"}, action="drop", then=https_site(certs, "s.test"))
    async with fake_network(endpoints={f"{A}:443": serve(censored)}, hosts={"s.test": [A]}) as net:
        _, tk = await measure("https://s.test/", net, certs)
    (main,) = _main(tk["tls_handshakes"])
    assert main["failure"] == "generic_timeout_error"
    assert main["t"] - main["t0"] == TIMEOUTS.tls
    # the innocuous-SNI retry of a timeout got through
    assert [e["failure"] for e in _diag(tk["tls_handshakes"], "sni_retry")] == [None]


async def test_http_timeout(autojump_clock: trio.testing.MockClock, certs: servers.Certs) -> None:
    hang = fs.http(fs.Reply(instead=fs.HANG))
    async with fake_network(endpoints={f"{A}:80": serve(hang)}, hosts={"s.test": [A]}) as net:
        _, tk = await measure("http://s.test/", net, certs)
    main = _main(tk["requests"])[0]
    assert main["failure"] == "generic_timeout_error"
    assert main["t"] - main["t0"] == TIMEOUTS.http


async def test_body_timeout_keeps_the_head_and_the_partial_body(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    stall = fs.http(fs.Reply(script=[b"x" * 1000, 1.0, b"y" * 10, fs.HANG]))
    async with fake_network(endpoints={f"{A}:80": serve(stall)}, hosts={"s.test": [A]}) as net:
        _, tk = await measure("http://s.test/", net, certs)
    main = _main(tk["requests"])[0]
    assert (main["failure"], main["response"]["code"]) == ("generic_timeout_error", 200)
    assert main["response"]["body"] == "x" * 1000 + "y" * 10
    assert main["t"] - main["t0"] == TIMEOUTS.http


async def test_dns_timeouts(autojump_clock: trio.testing.MockClock, certs: servers.Certs) -> None:
    async with fake_network(
        hosts={"s.test": Host(hang=True)}, resolvers={"198.18.0.53:53": lambda q: None}
    ) as net:
        _, tk = await measure("http://s.test/", net, certs, udp_resolver="198.18.0.53:53")
    by_engine = {(q["engine"], q["query_type"]): q for q in tk["queries"]}
    assert set(by_engine) == {("getaddrinfo", "ANY"), ("udp", "A"), ("udp", "AAAA")}
    for q in by_engine.values():
        assert q["failure"] == "generic_timeout_error"
        assert q["t"] - q["t0"] == TIMEOUTS.dns
    assert tk["dns_experiment_failure"] == "generic_timeout_error"
    assert tk["tcp_connect"] == []


async def test_control_timeout(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    th = fs.tls(certs.server_context("th.test"), fs.http(fs.Reply(instead=fs.HANG)))
    endpoints = {f"{A}:80": serve(fs.http(fs.page("ok"))), f"{C}:443": serve(th)}
    hosts = {"s.test": [A], "th.test": [C]}
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        msmt, tk = await measure("http://s.test/", net, certs, control_url="https://th.test/")
    assert tk["control_failure"] == "generic_timeout_error"
    assert tk["requests"][0]["response"]["code"] == 200
    assert msmt["test_runtime"] == TIMEOUTS.control


async def test_target_deadline(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """Every step takes its full timeout: the whole target stops at timeouts.target."""
    timeouts = Timeouts(dns=1.0, connect=10.0, tls=10.0, http=10.0, control=100.0, target=25.0)

    def slow(request: fs.Request) -> fs.Reply:
        return fs.Reply(
            script=[
                9.0,
                b"",
            ],
            status=302,
            headers=[("Location", "/again")],
        )

    async with fake_network(
        endpoints={f"{A}:80": serve(fs.http(slow), delay=9.0)}, hosts={"s.test": [A]}
    ) as net:
        msmt, tk = await measure("http://s.test/", net, certs, timeouts=timeouts)
    assert (tk["x_failure"], tk["x_failed_operation"]) == ("generic_timeout_error", "top_level")
    assert msmt["test_runtime"] == timeouts.target


# --- the control through the same network ------------------------------------------------------


async def test_control_answer_is_recorded(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    seen: list[dict[str, Any]] = []

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        return {
            "tcp_connect": {f"{A}:80": {"status": True, "failure": None}},
            "tls_handshake": {},
            "quic_handshake": {},
            "http_request": {
                "body_length": 100, "discovered_h3_endpoint": "", "failure": None,
                "title": "ok", "headers": {}, "status_code": 200,
            },
            "http3_request": None,
            "dns": {"failure": None, "addrs": [A]},
            "ip_info": {A: {"asn": 0, "flags": 3}},
        }  # fmt: skip

    th = fs.tls(certs.server_context("th.test"), fs.th(answer))
    endpoints = {f"{A}:80": serve(fs.http(fs.page("ok"))), f"{C}:443": serve(th)}
    async with fake_network(endpoints=endpoints, hosts={"s.test": [A], "th.test": [C]}) as net:
        msmt, tk = await measure("http://s.test/", net, certs, control_url="https://th.test/")
    assert seen[0]["http_request"] == "http://s.test/" and seen[0]["tcp_connect"] == [f"{A}:80"]
    assert tk["control_failure"] is None and tk["control"]["dns"]["addrs"] == [A]
    assert tk["x_control_request"] == seen[0]
    assert check_with_oonidata([json.dumps(msmt)]) == []


async def test_an_ipv6_resolver_is_written_without_brackets(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """``resolver_ip`` / ``client_resolver`` hold an address, not ``[::1]`` (issue 13)."""
    async with fake_network(resolvers={"[2001:db8::53]:53": lambda q: None}) as net:
        msmt, tk = await measure("http://198.18.1.1/", net, certs, udp_resolver="[2001:db8::53]:53")
    assert msmt["resolver_ip"] == "2001:db8::53" and tk["client_resolver"] == "2001:db8::53"
