"""The run's facts and the throughput follow-up inside the web flow (probe.runfacts, step 6 of
probe.experiment), on the fake network in virtual time.

A run is one :class:`probe.runfacts.RunFacts` in ``RunContext.run_facts``, as the session makes
it: the targets are measured one after the other, each records the baseline of the ones
before it, and a suspect target is followed up on new connections to the same address. The
links are shaped (:func:`tests.fakes.servers.throttle`): the open sites at 1 MB/s behind a
20 ms connect, the throttled name at 1.5 kB/s (a TSPU-like cap keyed on the ClientHello), or
every site at 16 kB/s (a slow link, which must not be called throttling).
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from probe.analysis import analyze
from probe.analysis.observations import observe
from probe.analysis.throttling import follow_up_plan
from probe.context import RunContext
from probe.experiment import FOLLOW_UP_BYTES, measure_web
from probe.plan import RunPlan, UrlSource, WebWork
from probe.runfacts import CANARY_PREFIX, RunBaseline, RunFacts, nxdomain_canary
from probe.session import Session
from tests.fakes import servers as fs
from tests.fakes.context import TIMEOUTS, run_context
from tests.fakes.network import Endpoint, FakeNetwork, Host, fake_network, serve
from tests.goldens.targeted import th_answer
from tests.unit import servers
from tests.unit.test_throttling import SMALL_THROTTLED, baseline, page

FAST, SLOW_LINK, CAP = 1_000_000.0, 16_000.0, 1_500.0
CONNECT = 0.02
TH = "198.19.0.100"
OPEN = {f"open{i}.test": f"198.18.1.{10 + i}" for i in range(4)}
THROTTLED, THROTTLED_IP = "throttled.test", "198.18.1.20"
#: what the control saw: its connect, handshake, first byte and body, in milliseconds
CONTROL_TIMES = {"t_connect": 0.005, "t_tls": 0.01, "t_first_byte": 0.02, "t_done": 0.03}


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


def _site(certs: servers.Certs, name: str, *, size: int, rate: float, sni: bool = False) -> Any:
    site = fs.tls(certs.server_context(name), fs.http(fs.page(name, size=size)))
    return serve(fs.throttle(rate, site, sni={name} if sni else None), delay=CONNECT)


def _internet(
    certs: servers.Certs, *, link: float = FAST, sizes: Mapping[str, int] | None = None
) -> tuple[dict[str, Endpoint], dict[str, Any]]:
    """The open sites (60 kB pages), the throttled name (a 6 kB page) and the control."""
    sizes = dict(sizes or {})
    endpoints = {
        f"{ip}:443": _site(certs, name, size=sizes.get(name, 60_000), rate=link)
        for name, ip in OPEN.items()
    }
    endpoints[f"{THROTTLED_IP}:443"] = _site(
        certs, THROTTLED, size=sizes.get(THROTTLED, 6_000), rate=CAP, sni=True
    )
    answer = fs.th(lambda request: th_answer(request, addrs=[], tls=True, transfer=CONTROL_TIMES))
    endpoints[f"{TH}:443"] = serve(fs.tls(certs.server_context("th.test"), answer))
    hosts: dict[str, Any] = {name: [ip] for name, ip in OPEN.items()}
    hosts[THROTTLED] = [THROTTLED_IP]
    hosts["th.test"] = [TH]
    return endpoints, hosts


def _run_ctx(net: FakeNetwork, certs: servers.Certs, facts: RunFacts | None) -> RunContext:
    ctx = run_context(net, ca_file=certs.ca_file, control_url="https://th.test/")
    return replace(ctx, run_facts=facts)


async def _run(ctx: RunContext, urls: Sequence[str]) -> list[dict[str, Any]]:
    return [await measure_web(url, ctx=ctx) for url in urls]


def _tagged(events: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [e for e in events if tag in (e.get("tags") or [])]


def _verdict(m: dict[str, Any]) -> tuple[Any, Any, str]:
    v = analyze(m)
    return v["blocking"], v["x_outcome"], v["x_rule_id"]


OPEN_URLS = [f"https://{name}/" for name in OPEN]


# --- a run learns its baseline, and follows a suspect target up --------------------------------


async def test_a_run_records_the_baseline_of_the_targets_before_each_one(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    endpoints, hosts = _internet(certs)
    facts = RunFacts(canary={"version": 1, "hostname": "cp-0.com", "engine": "getaddrinfo",
                             "failure": "dns_nxdomain_error", "addresses": []})  # fmt: skip
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        done = await _run(_run_ctx(net, certs, facts), OPEN_URLS)
    seen = [m["test_keys"]["x_run_baseline"]["targets_seen"] for m in done]
    assert seen == [0, 1, 2, 3]  # a measurement never counts itself
    last = done[-1]["test_keys"]["x_run_baseline"]["samples"]
    assert len(last) == 3
    for sample in last:  # the shaped link, read back from the events: exact in virtual time
        assert sample["tcp_connect"] == pytest.approx(CONNECT)
        assert sample["body_bytes"] > 50_000 and 0.04 < sample["body_time"] < 0.07
    assert all(m["test_keys"]["x_nxdomain_canary"]["hostname"] == "cp-0.com" for m in done)
    assert all("x_throughput_follow_up" not in m["test_keys"] for m in done)
    assert [_verdict(m)[1] for m in done] == ["ok"] * 4
    assert facts.baseline.snapshot()["targets_seen"] == 4


async def test_a_throttled_small_page_is_followed_up_and_called_throttled(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """The anchor of issue 16 item 5: a 6 kB page capped at 1.5 kB/s completes (in seconds);
    the follow-up under the same SNI to the same address crawls, the innocuous SNI is fast."""
    endpoints, hosts = _internet(certs)
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        *_, m = await _run(_run_ctx(net, certs, RunFacts()), [*OPEN_URLS, f"https://{THROTTLED}/"])
        connects = [c.ip for c in net.connects]
    tk = m["test_keys"]
    assert tk["requests"][-1]["failure"] is None  # the page itself came through
    follow = tk["x_throughput_follow_up"]
    assert follow == {
        "url": f"https://{THROTTLED}/", "address": f"{THROTTLED_IP}:443",
        "reasons": ["stage_times", "goodput"], "range_bytes": FOLLOW_UP_BYTES,
    }  # fmt: skip
    (request,) = _tagged(tk["requests"], "x_diag=throughput")
    assert request["request"]["headers"]["Range"] == f"bytes=0-{FOLLOW_UP_BYTES - 1}"
    assert request["address"] == f"{THROTTLED_IP}:443"
    (real,) = _tagged(tk["tls_handshakes"], "x_diag=throughput")
    (innocuous,) = _tagged(tk["tls_handshakes"], "x_diag=throughput_sni")
    assert (real["server_name"], innocuous["server_name"]) == (THROTTLED, "example.org")
    assert innocuous["t"] - innocuous["t0"] < (real["t"] - real["t0"]) / 5
    # the follow-up's progress counts the connection's bytes as they arrive: steady samples
    samples = [e for e in tk["network_events"] if e["operation"] == "bytes_received_cumulative"
               and e["transaction_id"] == request["transaction_id"]]  # fmt: skip
    assert len(samples) >= 8 and samples[-1]["t"] - samples[0]["t"] >= 3.0
    # two new connections to the same address (after the main one and the control's)
    assert connects.count(THROTTLED_IP) == 3
    ids = [e["transaction_id"] for e in tk["tcp_connect"]]
    assert len(ids) == len(set(ids))
    assert _verdict(m) == ("http-failure", "http/throttled", "http.throttled_follow_up")


async def test_the_first_target_of_a_run_has_no_baseline_and_no_follow_up(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    endpoints, hosts = _internet(certs)
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        (m,) = await _run(_run_ctx(net, certs, RunFacts()), [f"https://{THROTTLED}/"])
        assert [c.ip for c in net.connects].count(THROTTLED_IP) == 1
    tk = m["test_keys"]
    assert tk["x_run_baseline"]["samples"] == [] and "x_throughput_follow_up" not in tk
    assert _tagged(tk["requests"], "x_diag=throughput") == []
    assert _verdict(m)[1] == "ok"  # nothing to compare with: no claim of throttling


async def test_outside_a_run_nothing_is_recorded_or_followed_up(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    endpoints, hosts = _internet(certs)
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        m = (await _run(_run_ctx(net, certs, None), [*OPEN_URLS, f"https://{THROTTLED}/"]))[-1]
    assert not {"x_run_baseline", "x_nxdomain_canary", "x_throughput_follow_up"} & set(
        m["test_keys"]
    )


async def test_a_slow_link_slows_every_site_and_is_not_throttling(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """Every open site behind a 16 kB/s link: the pages take seconds, as the baseline does,
    so none is suspect; a 320 kB object cannot finish in the HTTP timeout at that speed and
    is a slow link, not throttling (before: http/throttled, goodput under the control's)."""
    endpoints, hosts = _internet(certs, link=SLOW_LINK, sizes={"open3.test": 320_000})
    urls = [*OPEN_URLS[:3], "https://open3.test/"]
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        done = await _run(_run_ctx(net, certs, RunFacts()), urls)
    assert all("x_throughput_follow_up" not in m["test_keys"] for m in done[:3])
    assert [_verdict(m)[1] for m in done[:3]] == ["ok"] * 3
    big = done[-1]
    assert big["test_keys"]["requests"][0]["failure"] == "generic_timeout_error"
    assert _verdict(big) == (False, "http/slow-link", "http.slow_link")
    assert all(_verdict(m)[1] != "http/throttled" for m in done)


# --- the session makes the run facts, once per run ----------------------------------------------


async def test_the_session_gives_every_target_of_a_run_the_same_facts(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, tmp_path: Path
) -> None:
    endpoints, hosts = _internet(certs)
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        ctx = run_context(net, ca_file=certs.ca_file, control_url="https://th.test/")
        config = replace(ctx.config, concurrency=1)
        session = Session(ctx=replace(ctx, config=config), fingerprints=_fps(), probe_ips=())
        plan = RunPlan(
            config=config, work=WebWork(sources=(UrlSource(tuple(OPEN_URLS)),)),
            output=tmp_path / "out.jsonl", live_progress=False,
        )  # fmt: skip
        await session.run(plan, tmp_path / "out.jsonl")
        canary_lookups = [h for h in net.lookups if h.startswith(CANARY_PREFIX)]
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(canary_lookups) == 1  # once per run, through the run's network
    canaries = {json.dumps(m["test_keys"]["x_nxdomain_canary"]) for m in lines}
    assert len(canaries) == 1 and canary_lookups[0] in canaries.pop()
    assert sorted(m["test_keys"]["x_run_baseline"]["targets_seen"] for m in lines) == [0, 1, 2, 3]


def _fps() -> Any:
    from probe.analysis.fingerprints import builtin

    return builtin()


# --- the pieces ---------------------------------------------------------------------------------


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


def test_the_keys_hold_the_snapshot_taken_when_the_fetch_ended() -> None:
    facts = RunFacts(canary={"version": 1, "hostname": "cp-0.com", "failure": None,
                             "addresses": ["198.18.2.53"]})  # fmt: skip
    snapshot = facts.baseline.snapshot()
    facts.baseline.add(page())  # another target finished meanwhile
    keys = facts.keys(snapshot)
    assert keys["x_run_baseline"]["targets_seen"] == 0
    assert keys["x_nxdomain_canary"]["addresses"] == ["198.18.2.53"]
    assert facts.keys()["x_run_baseline"]["targets_seen"] == 1
    assert "x_nxdomain_canary" not in RunFacts().keys()


async def test_the_canary_asks_the_system_resolver_for_a_random_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    name = f"{CANARY_PREFIX}{random.Random(7).getrandbits(64):016x}.com"
    async with fake_network(hosts={name: Host(error=socket.EAI_NONAME)}) as net:
        honest = await nxdomain_canary(timeouts=TIMEOUTS, net=net, rng=random.Random(7))
        assert net.lookups == [name]
    assert (honest["hostname"], honest["failure"], honest["addresses"]) == (
        name, "dns_nxdomain_error", [],
    )  # fmt: skip
    async with fake_network(hosts={name: ["198.18.2.53"]}) as net:
        rewriting = await nxdomain_canary(timeouts=TIMEOUTS, net=net, rng=random.Random(7))
    assert (rewriting["failure"], rewriting["addresses"]) == (None, ["198.18.2.53"])
    other = await nxdomain_canary(timeouts=TIMEOUTS, net=net, rng=random.Random(8))
    assert other["hostname"] != name and len(other["hostname"]) == len(name)


def test_only_a_suspect_target_gets_a_follow_up_plan() -> None:
    fast = page()
    fast["test_keys"]["x_run_baseline"] = baseline()
    assert follow_up_plan(observe(fast)) is None
    slow = page(**SMALL_THROTTLED)
    assert follow_up_plan(observe(slow)) is None  # no baseline yet: nothing to compare with
    slow["test_keys"]["x_run_baseline"] = baseline()
    p = follow_up_plan(observe(slow))
    assert p is not None and p.reasons == ("stage_times", "goodput")
    assert (p.ip, p.port, p.server_name, p.url, p.depth) == (
        "93.184.216.34", 443, "blocked.example", "https://blocked.example/", 0,
    )  # fmt: skip
