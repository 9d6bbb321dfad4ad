"""The packet-level test in the censorship lab (issue 15): exact hops, injection evidence,
nothing published about the volunteer's network, the follow-up of a real `probe run` by
`probe packet`, and `probe run --packet-level` (with raw sockets, and without).

Root and the lab are needed (CI runs them, the lab fixture fails loudly there). The scenarios
and their expected hops are in tests/lab/scenarios.toml (``[[packet_scenario]]``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab import model as m
from tests.lab.demo import probe_argv
from tests.lab.demo_packet import (
    FOLLOWED_HOPS,
    PacketLevelRun,
    PacketOutcome,
    lab_options,
    report,
    run_packet_level,
    run_packet_scenarios,
)
from tests.lab.fixtures import drop_net_raw

pytestmark = pytest.mark.lab

SCENARIOS = m.load_packet_scenarios()
FOLLOWED = FOLLOWED_HOPS
#: web scenarios that must not be followed up (not blocked, or not at a traceable stage)
NOT_FOLLOWED = [
    "https://ok.lab.test/",
    "https://down-refused.lab.test/",
    "https://tcp-rst.lab.test/",
]


@pytest.fixture(scope="module")
def outcomes(
    lab: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    lab_report: Callable[[str], None],
) -> dict[str, PacketOutcome]:
    results = run_packet_scenarios(lab, tmp_path_factory.mktemp("packet"))
    lab_report(report(results))
    return {o.scenario.id: o for o in results}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_packet_scenario(outcomes: dict[str, PacketOutcome], scenario: m.PacketScenario) -> None:
    outcome = outcomes[scenario.id]
    assert outcome.mismatches() == [], json.dumps(outcome.keys.get("x_censors"))


def test_the_censor_is_between_the_router_before_it_and_its_hop(
    outcomes: dict[str, PacketOutcome],
) -> None:
    border = outcomes["packet-border-sni-rst"].censor
    # hop 2 is the volunteer's ISP: withheld; hop 3 answered with the on-path reaction
    assert border["previous_hop"]["src_withheld"] == "own-network"
    assert border["hop_router"]["src"] == m.HOPS[3]
    assert border["hop_router"]["src_asn"] == 64510
    isp = outcomes["packet-sni-rst"].censor
    assert isp["previous_hop"] == {
        "hop": 1,
        "src": None,
        "src_asn": None,
        "src_as_org": None,
        "src_withheld": "own-network",
        "ref": "iterative_trace[0].control_trace.iterations[0].replies[0]",
    }
    # the router at hop 2 answered the innocuous trigger (the censor sits just before it)
    assert isp["hop_router"]["hop"] == 2
    assert isp["hop_router"]["src_withheld"] == "own-network"
    assert isp["hop_router"]["ref"] == "iterative_trace[0].control_trace.iterations[1].replies[0]"


def test_injected_packets_carry_the_injector_s_ttl(outcomes: dict[str, PacketOutcome]) -> None:
    """Forged packets left from the censor's box with TTL 64; the servers' arrive with 61."""
    expected_origin = {"packet-sni-rst": 1, "packet-host-rst": 1, "packet-border-sni-rst": 3}
    for sid, origin in expected_origin.items():
        checks = outcomes[sid].keys["x_injection"]
        forged = [c for c in checks if c["injected"]]
        assert forged, sid
        assert {c["origin_hop"] for c in forged} == {origin}, sid
        assert {tuple(c["ip_ttl"]) for c in forged} == {(65 - origin, 65 - m.PATH_LENGTH)}, sid
        # anything else the server itself sent (a ServerHello that beat our RST) passes
        assert all(c["origin_hop"] == m.PATH_LENGTH for c in checks if not c["injected"]), sid
    blockpage = outcomes["packet-border-blockpage"].keys["x_injection"]
    forged = [c for c in blockpage if c["injected"]]
    genuine = [c for c in blockpage if not c["injected"]]
    assert forged and all(c["tcp_options_mismatch"] for c in forged)
    # the server's own answer came too (the injector is on-path) and passes every check
    assert len(genuine) == 1 and genuine[0]["ttl"] == m.PATH_LENGTH
    dns = outcomes["packet-dns-injected-public"].keys["x_injection"]
    assert [c["before_path"] for c in dns if c["injected"]][0] is True


def test_no_router_of_the_volunteer_s_network_is_published(
    lab: dict[str, Any], outcomes: dict[str, PacketOutcome]
) -> None:
    for o in outcomes.values():
        text = json.dumps(o.measurement)
        for address in (lab["client_address"], m.HOPS[1], m.HOPS[2]):
            assert address not in text, (o.scenario.id, address)
        assert o.measurement["probe_ip"] == "127.0.0.1"
    border = json.dumps(outcomes["packet-border-blockpage"].measurement)
    assert m.HOPS[3] in border  # the national backbone's router is not the volunteer's


def test_bounded_and_polite(outcomes: dict[str, PacketOutcome]) -> None:
    for o in outcomes.values():
        tk = o.keys
        assert tk["x_packets_sent"] <= tk["x_limits"]["max_packets"]
        # only the scenario that sets a cap too small for its trace is cut short, and says so
        capped = o.scenario.max_packets is not None
        assert tk["x_truncated"] is capped, o.scenario.id
        for entry in tk["iterative_trace"]:
            for role in ("control_trace", "target_trace"):
                ttls = [it["ttl"] for it in entry[role]["iterations"]]
                assert ttls == sorted(set(ttls)) and max(ttls, default=0) <= m.PATH_LENGTH


@pytest.fixture(scope="module")
def web_run(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`probe run` from cp-client over the blocked web scenarios and a few others."""
    from tests.lab import lab as labmod

    labmod.control_start()
    output = tmp_path_factory.mktemp("web") / "web.jsonl"
    proc = subprocess.run(
        probe_argv(lab, output, [*FOLLOWED, *NOT_FOLLOWED]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return output


def _packet(
    lab: dict[str, Any], *argv: str, drop_raw: bool = False
) -> subprocess.CompletedProcess[str]:
    probe = m.REPO / ".venv" / "bin" / "probe"
    cmd = ["ip", "netns", "exec", m.NS_CLIENT, str(probe), "packet", *argv, *lab_options(lab)]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(m.REPO)},
        preexec_fn=drop_net_raw if drop_raw else None,  # noqa: PLW1509 - a single-threaded child
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_probe_run_follow_up_puts_the_hop_in_the_web_verdict(
    lab: dict[str, Any], web_run: Path, tmp_path: Path
) -> None:
    merged, packets = tmp_path / "merged.jsonl", tmp_path / "packet.jsonl"
    proc = _packet(
        lab,
        str(web_run),
        "--web-output",
        str(merged),
        "--output",
        str(packets),
        "--dns-server",
        f"{m.PUBLIC_RESOLVER}:53",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = {msmt["input"]: msmt for msmt in _lines(web_run)}
    after = {msmt["input"]: msmt for msmt in _lines(merged)}
    assert list(after) == list(before)
    for url, hop in FOLLOWED.items():
        tk, old = after[url]["test_keys"], before[url]["test_keys"]
        assert tk["x_censor_hop"] == hop, (url, tk["x_censors"])
        for key in ("blocking", "accessible", "x_outcome", "x_rule_id"):
            assert tk[key] == old[key], (url, key)
        assert tk["x_evidence"][: len(old["x_evidence"])] == old["x_evidence"]
        assert any(e.startswith("x_packet.iterative_trace[") for e in tk["x_evidence"]), url
    for url in NOT_FOLLOWED:
        assert after[url] == before[url]
        assert "x_packet" not in after[url]["test_keys"]
    traced = _lines(packets)
    assert {m["test_name"] for m in traced} == {"censor_trace"}
    # one trace per blocked TCP target, two for the DNS one (its resolver and the public one)
    assert len(traced) == len(FOLLOWED) + 1
    # the recomputed verdict is what `probe analyze` makes of the merged measurement
    line = next(
        x for x in merged.read_text(encoding="utf-8").splitlines() if "border-reset.lab" in x
    )
    again = subprocess.run(
        [str(m.REPO / ".venv" / "bin" / "probe"), "analyze", "--stdin", "--format", "json"],
        input=line,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["x_censor_hop"] == json.loads(line)["test_keys"]["x_censor_hop"]


def test_without_raw_sockets_one_line_and_nothing_else_changes(
    lab: dict[str, Any], web_run: Path, tmp_path: Path
) -> None:
    merged, packets = tmp_path / "merged.jsonl", tmp_path / "packet.jsonl"
    proc = _packet(
        lab, str(web_run), "--web-output", str(merged), "--output", str(packets), drop_raw=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "probe packet: packet-level test skipped: it needs root or CAP_NET_RAW (raw sockets); "
        "everything else runs as usual"
    ]
    assert merged.read_bytes() == web_run.read_bytes()
    assert not packets.exists()


# --- probe run --packet-level -------------------------------------------------------------------

VERDICT = ("blocking", "accessible", "x_outcome", "x_rule_id")


@pytest.fixture(scope="module")
def packet_level(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> PacketLevelRun:
    from tests.lab import lab as labmod

    labmod.control_start()
    output = tmp_path_factory.mktemp("packet-level") / "web.jsonl"
    return run_packet_level(lab, output, [*FOLLOWED, *NOT_FOLLOWED])


def test_probe_run_packet_level_puts_the_hop_in_the_web_verdicts(
    packet_level: PacketLevelRun, web_run: Path
) -> None:
    plain = {msmt["input"]: msmt for msmt in _lines(web_run)}
    assert sorted(packet_level.web) == sorted(plain)
    (trace_report,) = {t["report_id"] for t in packet_level.traces}
    web_report = {w["report_id"] for w in packet_level.web.values()}
    assert len(web_report) == 1 and trace_report not in web_report
    assert "_censortrace_" in trace_report and "_webconnectivity_" in web_report.pop()
    for url, hop in FOLLOWED.items():
        tk = packet_level.web[url]["test_keys"]
        assert tk["x_censor_hop"] == hop, (url, tk["x_censors"])
        assert [tk[k] for k in VERDICT] == [plain[url]["test_keys"][k] for k in VERDICT], url
        assert tk["x_packet"]["report_id"] == trace_report
        assert any(e.startswith("x_packet.iterative_trace[") for e in tk["x_evidence"]), url
    for url in NOT_FOLLOWED:
        assert "x_packet" not in packet_level.web[url]["test_keys"], url
    # one trace per followed target (DNS: towards the run's resolver only), each naming it
    assert len(packet_level.traces) == len(FOLLOWED)
    by_url = {t["input"]: t for t in packet_level.traces}
    assert sorted(by_url) == sorted(FOLLOWED)
    for url, hop in FOLLOWED.items():
        tk = by_url[url]["test_keys"]
        source = tk["x_target"]["measurement"]
        assert source["report_id"] == packet_level.web[url]["report_id"]
        expected = "packet/censor-located" if hop else "packet/server-reaction"
        assert (tk["x_outcome"], tk["x_censor_hop"]) == (expected, hop), url
    assert (
        f"probe run: packet-level: {len(FOLLOWED)} blocked target(s) followed up, "
        f"{len(FOLLOWED)} censor_trace measurement(s) in {packet_level.trace_report}"
    ) in packet_level.stderr.splitlines()


def test_probe_run_packet_level_without_raw_sockets_says_so_once(
    lab: dict[str, Any], web_run: Path, tmp_path: Path
) -> None:
    from tests.lab import lab as labmod

    labmod.control_start()
    run = run_packet_level(lab, tmp_path / "web.jsonl", [*FOLLOWED, *NOT_FOLLOWED], drop_raw=True)
    said = [line for line in run.stderr.splitlines() if "packet-level" in line]
    assert said == [
        "probe run: packet-level test skipped: it needs root or CAP_NET_RAW (raw sockets); "
        "everything else runs as usual"
    ]
    assert not run.trace_report.exists()
    plain = {msmt["input"]: msmt for msmt in _lines(web_run)}
    assert sorted(run.web) == sorted(plain)
    for url, msmt in run.web.items():
        tk, old = msmt["test_keys"], plain[url]["test_keys"]
        assert sorted(tk) == sorted(old), url
        assert [tk[k] for k in VERDICT] == [old[k] for k in VERDICT], url
