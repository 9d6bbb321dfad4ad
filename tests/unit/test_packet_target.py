"""probe.packet.target: which follow-ups a web measurement asks for (pure), on real lab output;
and which of their addresses the connect policy lets the trace reach (probe.packet.measure)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.config import Config
from probe.context import RunContext
from probe.packet.measure import PacketContext, refused
from probe.packet.target import PacketTarget, from_measurement, manual
from tests.goldens.tiers import GOLDENS as GOLDEN_TIERS
from tests.goldens.tiers import packet_level_cases

SAMPLES = Path(__file__).resolve().parents[2] / "results" / "samples"
GOLDENS = GOLDEN_TIERS / "lab"


def _by_input(path: Path) -> dict[str, dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {m["input"]: m for m in map(json.loads, lines)}


DEMO = _by_input(SAMPLES / "lab-demo.jsonl")
#: the web measurements `probe run --packet-level` wrote in the lab (tests/goldens)
FOLLOWED = {
    url: json.loads((GOLDENS / name / "measurement.json").read_text(encoding="utf-8"))
    for name, url in packet_level_cases().items()
}


def _brief(msmt: dict[str, Any], **kw: Any) -> list[tuple[str, str, int, str, str]]:
    return [(t.stage, t.address, t.port, t.name, t.path) for t in from_measurement(msmt, **kw)]


def test_blocked_stages_become_follow_ups() -> None:
    assert _brief(DEMO["https://sni-rst.lab.test/"]) == [
        ("tls", "198.19.1.11", 443, "sni-rst.lab.test", "/")
    ]
    assert _brief(DEMO["http://tproxy-blockpage.lab.test/"]) == [
        ("http", "198.19.1.14", 80, "tproxy-blockpage.lab.test", "/")
    ]
    assert _brief(DEMO["http://dns-injected.lab.test/"], extra_dns_servers=["198.19.8.8:53"]) == [
        ("dns", "198.18.2.53", 53, "dns-injected.lab.test", "/"),
        ("dns", "198.19.8.8", 53, "dns-injected.lab.test", "/"),
    ]


def test_every_followed_lab_scenario_has_exactly_one_follow_up() -> None:
    for url, msmt in FOLLOWED.items():
        targets = from_measurement(msmt)
        assert len(targets) == 1, url
        target = targets[0]
        assert target.name == url.split("/")[2]
        assert target.source["x_outcome"] == msmt["test_keys"]["x_outcome"]
        assert target.source["report_id"] == msmt["report_id"]


@pytest.mark.parametrize(
    "url", ["https://ok.lab.test/", "http://nxdomain.lab.test/", "https://blackhole.lab.test/"]
)
def test_open_sites_and_other_stages_are_not_followed(url: str) -> None:
    assert from_measurement(DEMO[url]) == []


def test_only_our_web_measurements_with_an_outcome() -> None:
    msmt = dict(DEMO["https://sni-rst.lab.test/"])
    assert from_measurement({**msmt, "test_name": "signal"}) == []
    assert from_measurement({**msmt, "test_keys": None}) == []
    assert from_measurement({**msmt, "input": None}) == []
    no_evidence = json.loads(json.dumps(msmt))
    no_evidence["test_keys"]["x_evidence"] = []  # falls back to the first failed main handshake
    assert _brief(no_evidence) == _brief(msmt)


def test_an_https_request_is_not_an_http_trigger() -> None:
    msmt = json.loads(json.dumps(DEMO["http://tproxy-blockpage.lab.test/"]))
    msmt["test_keys"]["requests"][0]["request"]["url"] = "https://tproxy-blockpage.lab.test/"
    assert from_measurement(msmt) == []


def test_manual_targets() -> None:
    t = manual("https://example.org/a?b=c", stage="tls", address="192.0.2.1")
    got = (t.stage, t.address, t.port, t.name, t.path)
    assert got == ("tls", "192.0.2.1", 443, "example.org", "/a?b=c")
    t = manual("http://example.org/", stage="dns", address="192.0.2.53:5353")
    assert (t.address, t.port) == ("192.0.2.53", 5353)
    assert manual("http://example.org/", stage="http", address="192.0.2.1").port == 80
    for bad in (
        lambda: manual("ftp://example.org/", stage="tls", address="192.0.2.1"),
        lambda: manual("https://example.org/", stage="udp", address="192.0.2.1"),
        lambda: manual("https://example.org/", stage="tls", address="example.org"),
        lambda: manual("https://example.org/", stage="tls", address="2001:db8::1"),
        lambda: manual("https://example.org/", stage="dns", address="192.0.2.1:70000"),
    ):
        with pytest.raises(ValueError):
            bad()


def _refused(target: PacketTarget, *ranges: str) -> str | None:
    config = Config(public_ranges=tuple(ipaddress.ip_network(r) for r in ranges))
    run = RunContext(
        config=config,
        ssl_context=None,  # type: ignore[arg-type]  # nothing is connected here
        diag_ssl_context=None,  # type: ignore[arg-type]
        control_ssl_context=None,  # type: ignore[arg-type]
        udp_resolver=None,
        report_id="",
        test_start_time="",
    )
    return refused(target, PacketContext(run=run))


def test_special_purpose_addresses_of_a_public_target_are_never_probed() -> None:
    """The connect policy of every test (probe.policy.ConnectPolicy), the resolver of a DNS
    trace included: a public target's trace never reaches the volunteer's own network."""
    for address in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "198.18.2.53", "169.254.169.254"):
        for stage in ("tls", "http", "dns"):
            target = manual("https://x.example/", stage=stage, address=address)
            assert _refused(target) == f"{address} is a special-purpose address: never probed"
    lab_resolver = manual("https://x.example/", stage="dns", address="198.18.2.53")
    assert _refused(lab_resolver, "198.18.0.0/15") is None
    assert _refused(manual("https://x.example/", stage="tls", address="93.184.216.34")) is None


def test_a_special_purpose_target_is_the_user_s_choice() -> None:
    """As in the web test: a target that is itself a private IP literal may be traced."""
    mine = manual("https://192.168.1.1/", stage="tls", address="192.168.1.1")
    assert _refused(mine) is None
    assert _refused(manual("http://10.0.0.1/", stage="dns", address="10.0.0.53")) is None


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.lists(st.text(max_size=12), max_size=3),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.lists(st.tuples(st.integers(0, 10_000), _JUNK), max_size=5))
def test_reading_targets_never_raises(which: int, changes: list[tuple[int, Any]]) -> None:
    """Untrusted JSON anywhere in a web measurement: targets or none, never an exception."""
    samples = list(FOLLOWED.values()) + list(DEMO.values())
    msmt = json.loads(json.dumps(samples[which % len(samples)]))
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            nodes.append((node, key))
            if isinstance(value, dict | list):
                walk(value)

    walk(msmt)
    for index, value in changes:
        parent, key = nodes[index % len(nodes)]
        parent[key] = value
    extra = ["198.19.8.8:53", "junk", "198.19.8.8:0", "198.19.8.8:65536"]
    for target in from_measurement(msmt, extra_dns_servers=extra):
        assert target.stage in ("tls", "http", "dns") and 0 < target.port < 65536
