"""The probe side of throttling and NXDOMAIN rewriting: the run baseline, the canary, the
follow-up, and the run step that ties them (probe.runfacts, probe.followup).

The end-to-end tests measure real loopback servers (tests/unit/servers.py) under trio's
autojump clock: fast sites that teach the run baseline, then a site whose TLS handshake and
body are slowed as an SNI-triggered throttle slows them, with a scripted control vantage.
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing

from probe.analysis import analyze
from probe.config import Config, Timeouts
from probe.experiment import RunContext
from probe.followup import FOLLOW_UP_BYTES, measure_with_run_facts, plan
from probe.runfacts import RunBaseline, RunFacts, nxdomain_canary
from probe.stages import tls
from tests.unit import servers as srv
from tests.unit.test_throttling import SMALL_THROTTLED, baseline, page

PAGE = b"<html><head><title>Lab page</title></head><body>" + b"y" * 60000 + b"</body></html>"
SMALL = b"<html><head><title>Small page</title></head><body>" + b"z" * 4000 + b"</body></html>"


# --- the baseline accumulator and the canary ---------------------------------------------------


def test_the_baseline_counts_every_target_and_samples_the_completed_ones() -> None:
    acc = RunBaseline(keep=3)
    assert acc.snapshot() == {"version": 1, "targets_seen": 0, "samples": []}
    fast = page(tcp=0.01, tls=0.02, ttfb=0.03, body=60000, body_seconds=0.05)
    assert acc.add(fast) is not None
    assert acc.add(page(timeout=True)) is None  # failed: counted, not sampled
    for _ in range(4):
        acc.add(fast)
    snap = acc.snapshot()
    assert snap["targets_seen"] == 6 and len(snap["samples"]) == 3  # the most recent kept
    sample = snap["samples"][0]
    assert sample == {"tcp_connect": 0.01, "tls_handshake": 0.02, "ttfb": 0.03,
                      "body_bytes": 60000, "body_time": 0.05}  # fmt: skip
    json.dumps(snap)


def test_attach_records_the_other_targets_only() -> None:
    facts = RunFacts(canary={"version": 1, "hostname": "cp-0.com", "failure": None,
                             "addresses": ["82.96.64.2"]})  # fmt: skip
    m = page()
    facts.attach(m)
    facts.baseline.add(m)
    assert m["test_keys"]["x_run_baseline"]["targets_seen"] == 0
    assert m["test_keys"]["x_nxdomain_canary"]["addresses"] == ["82.96.64.2"]
    second = page()
    facts.attach(second)
    assert second["test_keys"]["x_run_baseline"]["targets_seen"] == 1


async def test_the_canary_asks_the_system_resolver_for_a_random_name() -> None:
    asked: list[str] = []

    def honest(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def rewriting(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("82.96.64.2", 0))]

    timeouts = Timeouts(dns=1.0)
    rng = random.Random(7)
    c = await nxdomain_canary(timeouts=timeouts, rng=rng, getaddrinfo=honest)
    assert (c["failure"], c["addresses"]) == ("dns_nxdomain_error", [])
    c = await nxdomain_canary(timeouts=timeouts, suffix="nx.lab.test", getaddrinfo=rewriting)
    assert (c["failure"], c["addresses"]) == (None, ["82.96.64.2"])
    assert asked[0].startswith("cp-") and asked[0].endswith(".com") and len(asked[0]) == 23
    assert asked[1].endswith(".nx.lab.test") and asked[0] != asked[1]


# --- the plan ------------------------------------------------------------------------------


def test_only_a_suspect_target_gets_a_follow_up() -> None:
    fast = page()
    fast["test_keys"]["x_run_baseline"] = baseline()
    assert plan(fast) is None
    slow = page(**SMALL_THROTTLED)
    assert plan(slow) is None  # no baseline yet: nothing to compare with
    slow["test_keys"]["x_run_baseline"] = baseline()
    p = plan(slow)
    assert p is not None and p.reasons == ("stage_times", "goodput")
    assert (p.ip, p.port, p.server_name, p.url) == (
        "93.184.216.34", 443, "blocked.example", "https://blocked.example/",
    )  # fmt: skip
    big = "https://blocked.example/big.bin"
    assert plan(slow, large_objects={"blocked.example": big}).url == big  # type: ignore[union-attr]
    other = {"blocked.example": "https://cdn.example/big.bin"}  # another host: another SNI
    assert plan(slow, large_objects=other).url == "https://blocked.example/"  # type: ignore[union-attr]


# --- end to end on loopback ------------------------------------------------------------------


@asynccontextmanager
async def throttled_site(
    certs: srv.Certs, host: str, *, hello_delay: float, chunk: int, every: float
) -> AsyncIterator[srv.TCPServer]:
    """An HTTPS site behind an SNI-triggered throttle, as the client sees it: the handshake
    waits ``hello_delay`` seconds, then the response trickles ``chunk`` bytes every ``every``
    seconds (whatever the request, so the follow-up's Range request trickles too)."""
    context = certs.server_context(host)

    async def handle(stream: trio.abc.Stream) -> None:
        await trio.sleep(hello_delay)
        secure = trio.SSLStream(stream, context, server_side=True)
        await secure.do_handshake()
        await srv.read_request(secure)
        data = srv.response(SMALL, headers=["Content-Type: text/html"])
        for i in range(0, len(data), chunk):
            await secure.send_all(data[i : i + chunk])
            await trio.sleep(every)
        await trio.sleep_forever()  # keeps the connection: a cap, not a close

    async with srv.tcp_server(handle, host=host) as server:
        yield server


def _control_answer() -> dict[str, Any]:
    return {
        "tcp_connect": {}, "tls_handshake": {}, "quic_handshake": {},
        "http_request": {
            "body_length": len(SMALL), "failure": None, "title": "Small page",
            "headers": {"Content-Type": "text/html"}, "status_code": 200,
            "x_transfer": {"body_length": len(SMALL), "t_first_byte": 0.02, "t_done": 0.03,
                           "t_connect": 0.005, "t_tls": 0.01},
        },
        "http3_request": None, "dns": {"failure": None, "addrs": []}, "ip_info": {},
    }  # fmt: skip


def _context(certs: srv.Certs, control: str) -> RunContext:
    config = Config(
        timeouts=Timeouts(dns=1.0, connect=2.0, tls=5.0, http=10.0, control=5.0, target=120.0),
        ca_file=certs.ca_file,
        control_url=control,
        public_ranges=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    return RunContext(
        config=config,
        ssl_context=tls.make_ssl_context(ca_file=certs.ca_file),
        diag_ssl_context=tls.make_ssl_context(verify=False),
        control_ssl_context=tls.make_ssl_context(ca_file=certs.ca_file),
        udp_resolver=None,
        report_id="20261201T000000Z_webconnectivity_ZZ_0_n1_RunFactsLoopbackTest",
        test_start_time="2026-12-01 00:00:00",
    )


async def test_a_run_learns_its_baseline_and_follows_up_a_throttled_site(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    certs = srv.Certs(tmp_path)
    answer = json.dumps(_control_answer()).encode()
    async with AsyncExitStack() as stack:
        control = await stack.enter_async_context(
            srv.http_server([srv.response(answer, headers=["Content-Type: application/json"])])
        )
        fast = []
        for i in range(3):
            host = f"127.0.0.{31 + i}"
            fast.append(await stack.enter_async_context(srv.http_server(
                [srv.response(PAGE, headers=["Content-Type: text/html"])], host=host,
                ssl_context=certs.server_context(host),
            )))  # fmt: skip
        slow = await stack.enter_async_context(
            throttled_site(certs, "127.0.0.40", hello_delay=2.0, chunk=500, every=0.5)
        )
        ctx = _context(certs, f"http://{control.address}/")
        facts = RunFacts()
        done = []
        for server in [*fast, slow]:
            url = f"https://{server.address}/"
            done.append(await measure_with_run_facts(url, ctx=ctx, facts=facts))
    *fast_ones, throttled = done
    for m in fast_ones:
        assert analyze(m)["x_outcome"] == "ok"
        assert "x_throughput_follow_up" not in m["test_keys"]
    tk = throttled["test_keys"]
    assert tk["x_run_baseline"]["targets_seen"] == 3 and len(tk["x_run_baseline"]["samples"]) == 3
    assert "stage_times" in tk["x_throughput_follow_up"]["reasons"]
    assert tk["x_throughput_follow_up"]["range_bytes"] == FOLLOW_UP_BYTES
    follow = [r for r in tk["requests"] if "x_diag=throughput" in r["tags"]]
    assert len(follow) == 1
    assert follow[0]["request"]["headers"]["Range"] == f"bytes=0-{FOLLOW_UP_BYTES - 1}"
    sni = [h for h in tk["tls_handshakes"] if "x_diag=throughput_sni" in h["tags"]]
    assert len(sni) == 1 and sni[0]["server_name"] == "example.org"
    ids = [e["transaction_id"] for e in tk["tcp_connect"]]
    assert len(ids) == len(set(ids))  # the follow-up's connections got ids of their own
    v = analyze(throttled)
    assert (v["blocking"], v["x_outcome"]) == ("http-failure", "http/throttled")
    assert v["x_rule_id"] in {"http.throttled_stage_times", "http.throttled_follow_up"}
    assert facts.baseline.snapshot()["targets_seen"] == 4
