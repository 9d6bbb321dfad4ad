"""probe.analysis.packet: where the censor sits and which packets were forged (pure).

Real captures first: the lab goldens (tests/goldens/lab) hold what `probe packet` wrote for every
[[packet_scenario]] of tests/lab/scenarios.toml, and what `probe run --packet-level` wrote for
the blocked web scenarios (their follow-ups embedded); re-analysing them must give what the
probe wrote (the goldens' test checks the lab's ground truth on them). Then the rules one by one
on small hand-made traces, the censor_trace verdict (its rules, its short form), the web
verdict's hook (no packet facts: the verdict is returned untouched, on every OONI sample, the QA
set and our samples), and totality under hypothesis.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe import registry
from probe.analysis import VERDICT_KEYS, analyze
from probe.analysis.fingerprints import builtin
from probe.analysis.packet import (
    PACKET_KEYS,
    PACKET_RULES,
    analyze_facts,
    analyze_packet,
    origin_hop,
    packet_verdict,
    with_packet_facts,
)
from tests.goldens import tiers
from tests.lab import model as lab
from tests.lab.demo_packet import FOLLOWED_HOPS

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "results" / "samples"
GOLDENS = tiers.GOLDENS / "lab"


def _golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDENS / name / "measurement.json").read_text("utf-8"))
    return data


#: the censor_trace goldens, in scenario order; the web goldens of `probe run --packet-level`
TRACES = [_golden(s.id) for s in lab.load_packet_scenarios()]
FOLLOWED = [_golden(name) for name in tiers.packet_level_cases()]
BY_ID = {s.id: m for s, m in zip(lab.load_packet_scenarios(), TRACES, strict=True)}
SHARED = REPO / ".." / "shared" / "data"
VERDICT_KEYS_OF_PACKETS = (
    *PACKET_KEYS, "x_outcome", "x_rule_id", "x_rules_version", "x_evidence",
)  # fmt: skip


# --- real captures ------------------------------------------------------------------------------


def test_goldens_cover_every_packet_scenario() -> None:
    assert {m["test_name"] for m in TRACES} == {"censor_trace"}
    assert [m["input"] for m in FOLLOWED] == list(FOLLOWED_HOPS)
    assert {m["test_name"] for m in FOLLOWED} == {"web_connectivity"}


def _trace_id(m: dict[str, Any]) -> str:
    target = m["test_keys"]["x_target"]
    return f"{m['input']} {target['stage']} {target['address']}"


@pytest.mark.parametrize("msmt", TRACES, ids=[_trace_id(m) for m in TRACES])
def test_reanalysis_gives_what_the_probe_wrote(msmt: dict[str, Any]) -> None:
    keys = analyze_packet(msmt)
    assert list(keys) == list(VERDICT_KEYS_OF_PACKETS)
    for key, value in keys.items():
        assert msmt["test_keys"][key] == value, key


def test_the_censor_trace_verdict_reads_the_statuses() -> None:
    got = {sid: analyze_packet(m)["x_rule_id"] for sid, m in BY_ID.items()}
    assert got["packet-sni-rst"] == "packet.censor_located"
    assert got["packet-server-sni-rst"] == "packet.server_reaction"
    assert got["packet-clean-https"] == "packet.no_censor"
    assert got["packet-down-refused"] == "packet.no_connection"
    assert got["packet-cap-reached"] == "packet.incomplete"
    assert got["packet-private-address"] == "packet.not_traced"
    assert {r.outcome.value for r in PACKET_RULES} == {
        analyze_packet(m)["x_outcome"] for m in TRACES
    }


def test_the_short_verdict_names_the_hop() -> None:
    located = packet_verdict(analyze_packet(BY_ID["packet-border-sni-rst"]))
    assert (located.label, located.anomaly, located.blocking, located.outcome) == (
        "censor at hop 3", True, None, "packet/censor-located",
    )  # fmt: skip
    labels = {sid: packet_verdict(analyze_packet(m)).label for sid, m in BY_ID.items()}
    assert labels["packet-server-sni-rst"] == "server reaction"
    assert labels["packet-clean-dns"] == "no censor"
    assert labels["packet-down-blackhole"] == "no connection"
    assert labels["packet-cap-reached"] == "incomplete"
    assert labels["packet-private-address"] == "not traced"
    assert packet_verdict({}).label == "undetermined"
    # the registry's entry is this engine
    spec = registry.spec(registry.CENSOR_TRACE)
    assert (spec.analyze, spec.verdict, spec.engine) == (analyze_packet, packet_verdict, "packet")


def test_evidence_references_point_at_packets_of_the_measurement() -> None:
    for msmt in TRACES:
        for ref in analyze_packet(msmt)["x_evidence"]:
            node: Any = msmt["test_keys"]
            for part in ref.replace("]", "").split("."):
                name, _, index = part.partition("[")
                node = node[name]
                if index:
                    node = node[int(index)]
            assert isinstance(node, dict) and ("kind" in node or "ttl" in node), ref


def test_followed_web_measurements_carry_the_hop() -> None:
    hops = {m["input"]: analyze(m, fingerprints=builtin())["x_censor_hop"] for m in FOLLOWED}
    assert hops == FOLLOWED_HOPS
    for m in FOLLOWED:
        verdict = analyze(m, fingerprints=builtin())
        for key in (*VERDICT_KEYS, *PACKET_KEYS):
            if key.endswith("_version"):
                continue  # the rules moved on since the capture (verdict.json has today's)
            assert m["test_keys"][key] == verdict[key], (m["input"], key)


def test_packet_facts_only_add_keys_and_evidence() -> None:
    for m in FOLLOWED:
        bare = copy.deepcopy(m)
        del bare["test_keys"]["x_packet"]
        before = analyze(bare, fingerprints=builtin())
        after = analyze(m, fingerprints=builtin())
        assert list(before) == list(VERDICT_KEYS)
        assert list(after) == [*VERDICT_KEYS, *PACKET_KEYS]
        for key in VERDICT_KEYS:
            if key != "x_evidence":
                assert after[key] == before[key], key
        added = after["x_evidence"][len(before["x_evidence"]) :]
        assert after["x_evidence"][: len(before["x_evidence"])] == before["x_evidence"]
        assert added and all(e.startswith("x_packet.iterative_trace[") for e in added)


# --- the web verdict without packet facts is untouched -----------------------------------------


def _without_facts() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((SHARED / "ooni-samples").rglob("*.json*")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines() if path.suffix == ".jsonl" else [text]
        for i, line in enumerate(lines):
            try:
                msmt = json.loads(line)
            except ValueError:
                continue
            if isinstance(msmt, dict):
                out.append((f"{path.name}:{i}", msmt))
    for path in sorted((SHARED / "ooni-qa").glob("*/measurement.json")):
        out.append((path.parent.name, json.loads(path.read_text(encoding="utf-8"))))
    for path in sorted(SAMPLES.glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            out.append((f"{path.name}:{i}", json.loads(line)))
    assert len(out) > 60, "../shared/data is missing"
    return out


def test_without_packet_facts_the_verdict_is_returned_untouched() -> None:
    """Byte for byte: the hook hands back the very object the rules produced, for every OONI
    sample, every QA measurement and every committed sample of ours."""
    fps = builtin()
    for name, msmt in _without_facts():
        verdict = analyze(msmt, fingerprints=fps)
        assert list(verdict) == list(VERDICT_KEYS), name
        assert with_packet_facts(msmt, verdict) is verdict, name
        text = json.dumps(verdict, sort_keys=False)
        assert json.dumps(with_packet_facts(msmt, verdict), sort_keys=False) == text, name


def test_embedded_facts_change_no_classic_key_of_any_sample() -> None:
    facts = FOLLOWED[0]["test_keys"]["x_packet"]
    fps = builtin()
    for name, msmt in _without_facts()[:80]:
        if not isinstance(msmt.get("test_keys"), dict):
            continue
        plain = analyze(msmt, fingerprints=fps)
        with_facts = copy.deepcopy(msmt)
        with_facts["test_keys"]["x_packet"] = facts
        got = analyze(with_facts, fingerprints=fps)
        assert {k: got[k] for k in VERDICT_KEYS if k != "x_evidence"} == {
            k: plain[k] for k in VERDICT_KEYS if k != "x_evidence"
        }, name
        assert got["x_censor_hop"] == 2, name


def test_the_analysis_stays_pure() -> None:
    code = (
        "import json, sys\nimport probe.analysis.packet\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('trio', 'socket', 'ssl', 'scapy') or m.startswith('probe.packet'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


# --- the rules on hand-made traces -------------------------------------------------------------

PEER = "203.0.113.7"


Facts = dict[str, Any]


def _te(hop: int) -> Facts:
    return {
        "kind": "icmp",
        "icmp_type": 11,
        "icmp_code": 0,
        "src": None,
        "ip_ttl": 65 - hop,
        "src_withheld": "bogon",
    }


def _tcp(flags: str, *, ttl: int = 55, ident: int = 0, payload: int = 0, ts: bool = True) -> Facts:
    return {
        "kind": "tcp",
        "src": PEER,
        "tcp_flags": flags,
        "ip_ttl": ttl,
        "ip_id": ident,
        "tcp_window": 64,
        "tcp_options": [["MSS", 1460], ["Timestamp", [1, 2]]] if ts else [],
        "payload_length": payload,
    }


def _udp(answers: list[str], *, ttl: int = 55, ident: int = 7) -> Facts:
    dns = {"id": ident, "rcode": 0, "answers": answers}
    return {"kind": "udp", "src": PEER, "ip_ttl": ttl, "ip_id": 1, "dns": dns}


def _it(
    ttl: int, replies: list[Facts], *, failure: str | None = None, syn_ack_ttl: int | None = 55
) -> Facts:
    syn = None if syn_ack_ttl is None else _tcp("SA", ttl=syn_ack_ttl)
    return {
        "ttl": ttl,
        "failure": failure,
        "packets_sent": 4,
        "handshake": {"syn_ack": syn, "rtt": 0.01},
        "replies": replies,
        "late_replies": [],
    }


def _facts(control: list[Facts], target: list[Facts], stage: str = "tls") -> Facts:
    entry = {
        "stage": stage,
        "address": f"{PEER}:443",
        "control_trace": {"name": "example.org", "iterations": control},
        "target_trace": {"name": "blocked.example", "iterations": target},
    }
    return {"iterative_trace": [entry]}


def _censor(facts: dict[str, Any]) -> dict[str, Any]:
    keys, _ = analyze_facts(facts, prefix="")
    censor: dict[str, Any] = keys["x_censors"][0]
    return censor


SERVER_HELLO = _tcp("PA", ident=900, payload=700)
CONTROL = [_it(1, [_te(1)]), _it(2, [_te(2)]), _it(3, [_te(3)]), _it(4, [SERVER_HELLO])]


def test_a_router_that_stays_silent_once_is_not_a_drop() -> None:
    target = [_it(1, [_te(1)]), _it(2, []), _it(3, [_te(3)]), _it(4, [SERVER_HELLO])]
    assert _censor(_facts(CONTROL, target))["status"] == "none"


def test_a_drop_lasts_to_the_end_of_the_trace() -> None:
    target = [_it(1, [_te(1)]), _it(2, []), _it(3, []), _it(4, [])]
    c = _censor(_facts(CONTROL, target))
    assert (c["status"], c["hop"], c["reaction"], c["placement"]) == ("found", 2, "drop", "in-path")
    assert c["previous_hop"]["hop"] == 1 and c["hop_router"]["hop"] == 2


def test_a_reset_where_the_server_is_that_looks_like_the_server_is_the_server() -> None:
    target = [*CONTROL[:3], _it(4, [_tcp("RA", ttl=55)])]
    c = _censor(_facts(CONTROL, target))
    assert (c["status"], c["hop"], c["reaction"]) == ("server", 4, "rst")


def test_a_reset_where_the_server_is_with_another_ttl_is_injected() -> None:
    target = [*CONTROL[:3], _it(4, [_tcp("RA", ttl=58)])]
    keys, refs = analyze_facts(_facts(CONTROL, target), prefix="x_packet.")
    c = keys["x_censors"][0]
    assert (c["status"], c["hop"], c["reaction"]) == ("found", 4, "rst")
    check = keys["x_injection"][0]
    assert check["ip_ttl"] == [58, 55] and check["origin_hop"] == 7 and check["injected"]
    assert refs[0] == "x_packet.iterative_trace[0].target_trace.iterations[3].replies[0]"


def test_a_reply_before_the_path_s_end_is_injected_whatever_its_ttl() -> None:
    target = [_it(1, [_te(1)]), _it(2, [_tcp("R", ttl=55)]), _it(4, [_tcp("R", ttl=55)])]
    keys, _ = analyze_facts(_facts(CONTROL, target), prefix="")
    assert keys["x_censor_hop"] == 2
    assert [c["before_path"] for c in keys["x_injection"]] == [True, False]
    assert [c["injected"] for c in keys["x_injection"]] == [True, False]


def test_ip_id_and_options_of_a_forged_response() -> None:
    forged = _tcp("FPA", ttl=55, ident=40000, payload=1300, ts=False)
    genuine = _tcp("PA", ttl=55, ident=901, payload=700)
    target = [*CONTROL[:3], _it(4, [forged, _tcp("A", ident=900), genuine])]
    keys, _ = analyze_facts(_facts(CONTROL, target, stage="http"), prefix="")
    first, second = keys["x_injection"]
    assert (first["ip_id_out_of_sequence"], first["tcp_options_mismatch"]) == (True, True)
    assert first["injected"] and not second["injected"]
    assert keys["x_censors"][0]["reaction"] == "response"
    assert keys["x_censors"][0]["placement"] == "on-path"


def test_two_dns_answers_at_one_distance_the_first_is_forged() -> None:
    control = [_it(1, [_udp(["198.51.100.1"])], syn_ack_ttl=None)]
    target = [_it(1, [_udp(["10.0.0.1"]), _udp(["198.51.100.2"])], syn_ack_ttl=None)]
    keys, _ = analyze_facts(_facts(control, target, stage="dns"), prefix="")
    assert [c["injected"] for c in keys["x_injection"]] == [True, False]
    assert all(c["dns_answers_differ"] for c in keys["x_injection"])
    assert keys["x_censors"][0]["placement"] == "on-path"


def test_no_connection_and_incomplete() -> None:
    failed = [_it(1, [], failure="connection_refused", syn_ack_ttl=None)]
    assert _censor(_facts(failed, []))["status"] == "no-connection"
    assert _censor(_facts(CONTROL, []))["status"] == "incomplete"


def test_residual_blocking_after_the_reaction_keeps_the_hop() -> None:
    target = [_it(1, [_te(1)]), _it(2, [_tcp("R", ttl=64)]),
              _it(4, [], failure="generic_timeout_error", syn_ack_ttl=None)]  # fmt: skip
    assert _censor(_facts(CONTROL, target))["hop"] == 2


def test_origin_hop_from_usual_initial_ttls() -> None:
    assert [origin_hop(t) for t in (64, 61, 128, 250, 30)] == [1, 4, 1, 6, 3]


# --- totality ------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON)
def test_analysis_is_total_on_any_json(value: Any) -> None:
    keys, refs = analyze_facts({"iterative_trace": value}, prefix="")
    assert list(keys) == list(PACKET_KEYS)
    assert all(isinstance(r, str) for r in refs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), _JSON), min_size=1, max_size=5))
def test_analysis_is_total_under_mutation_of_a_real_trace(changes: list[tuple[int, Any]]) -> None:
    msmt = copy.deepcopy(BY_ID["packet-border-sni-rst"])
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k in list(node):
                nodes.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])

    walk(msmt["test_keys"]["iterative_trace"])
    for index, value in changes:
        parent, key = nodes[index % len(nodes)]
        parent[key] = value
    keys = analyze_packet(msmt)
    assert keys == analyze_packet(msmt)  # deterministic
    web = copy.deepcopy(FOLLOWED[0])
    web["test_keys"]["x_packet"] = {"iterative_trace": msmt["test_keys"]["iterative_trace"]}
    assert list(analyze(web))[: len(VERDICT_KEYS)] == list(VERDICT_KEYS)
