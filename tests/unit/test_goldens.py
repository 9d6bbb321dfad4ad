"""Golden files per tier (tests/goldens): every committed measurement gives, recomputed now,
exactly the committed observations and verdict; every rule id (web, apps and packet) fires on
at least one golden; every lab scenario (web, apps, packet, and each followed-up web scenario as
`probe run --packet-level` writes it), OONI QA case and corpus measurement has its golden; our
own measurements load strictly with OONI's parser. Regenerate with ``python -m tests.goldens``
(it prints the diff to review)."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from probe.analysis.packet import PACKET_RULES
from probe.analysis.rules import RULES
from probe.apps.verdict import APP_RULES
from tests import corpus
from tests.conformance.check import check_with_oonidata
from tests.goldens import targeted, tiers
from tests.lab import model as m
from tests.lab.demo_packet import FOLLOWED_HOPS, PacketOutcome

CASES = tiers.cases()
HINT = "recompute with `python -m tests.goldens` and review the diff it prints"


def _verdict(case: tiers.Case) -> dict[str, object]:
    data: dict[str, object] = json.loads((case.directory / tiers.VERDICT).read_text())
    return data


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_derived_tiers_are_recomputed_exactly(case: tiers.Case) -> None:
    for name, text in case.derived().items():
        path = case.directory / name
        assert path.is_file(), f"{case.id}: {name} missing; {HINT}"
        assert json.loads(path.read_text(encoding="utf-8")) == json.loads(text), (
            f"{case.id}/{name} changed; {HINT}"
        )


def test_every_rule_fires_on_a_golden() -> None:
    fired = {_verdict(c).get("x_rule_id") for c in CASES}
    ids = [r.rule_id for r in (*RULES, *APP_RULES, *PACKET_RULES)]
    assert [i for i in ids if i not in fired] == []


def test_every_lab_scenario_and_qa_case_has_a_golden() -> None:
    names = {c.id for c in CASES}
    _, scenarios = m.load()
    wanted = [f"lab/{s.id}" for s in scenarios] + [f"lab/{s.id}" for s in m.load_app_scenarios()]
    wanted += [f"lab/{s.id}" for s in m.load_packet_scenarios()]
    wanted += [f"lab/{name}" for name in tiers.packet_level_cases()]
    wanted += [
        f"ooni-qa/{d.name}" for d in tiers.QA.glob("*/") if (d / "measurement.json").exists()
    ]
    wanted += [f"corpus/{e.id}" for e in corpus.entries()]
    assert [w for w in wanted if w not in names] == []
    tiers_dirs = [d for t in tiers.TIERS for d in (tiers.GOLDENS / t).glob("*/")]
    assert sorted(d for d in tiers_dirs if d not in {c.directory for c in CASES}) == []


def test_lab_goldens_reach_their_scenarios_verdicts() -> None:
    _, scenarios = m.load()
    for s in scenarios:
        v = _verdict(tiers.Case("lab", s.id, tiers.GOLDENS / "lab" / s.id / "measurement.json"))
        assert (v["blocking"], v["accessible"], v["x_outcome"]) == (
            s.blocking, s.accessible, s.x_outcome,
        ), s.id  # fmt: skip
    for a in m.load_app_scenarios():
        v = _verdict(tiers.Case("lab", a.id, tiers.GOLDENS / "lab" / a.id / "measurement.json"))
        assert (v["x_app_verdict"], v["x_outcome"]) == (a.x_app_verdict, a.x_outcome), a.id


def test_packet_lab_goldens_reach_their_scenarios() -> None:
    """The censor_trace goldens place each censor where scenarios.toml says; the web goldens of
    `probe run --packet-level` carry that hop and the web verdict of their scenario."""
    for p in m.load_packet_scenarios():
        case = tiers.Case("lab", p.id, tiers.GOLDENS / "lab" / p.id / "measurement.json")
        measured = case.measurement()
        measured["test_keys"].update(_verdict(case))  # the verdict recomputed now
        assert PacketOutcome(p, measured, "").mismatches() == [], p.id
    _, scenarios = m.load()
    expected = {s.url: s for s in reversed(scenarios)}
    for name, url in tiers.packet_level_cases().items():
        v = _verdict(tiers.Case("lab", name, tiers.GOLDENS / "lab" / name / "measurement.json"))
        s = expected[url]
        assert (v["x_censor_hop"], v["x_outcome"], v["blocking"]) == (
            FOLLOWED_HOPS[url], s.x_outcome, s.blocking,
        ), name  # fmt: skip
        assert any(str(e).startswith("x_packet.") for e in v["x_evidence"]), name


def test_targeted_cases_fire_the_rule_they_exist_for() -> None:
    expected = {c.name: c.rule_id for c in targeted.CASES}
    expected[str(targeted.OONI_WITHOUT_STATUS["name"])] = str(
        targeted.OONI_WITHOUT_STATUS["rule_id"]
    )
    got = {c.name: _verdict(c)["x_rule_id"] for c in CASES if c.tier == "targeted"}
    assert got == expected


_ADDRESS = re.compile(r"(?<![\w.:/])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.])")
_OURS = [ipaddress.ip_network("198.18.0.0/15")]


def test_committed_measurements_hold_only_lab_addresses() -> None:
    """Lab and targeted measurements are ours: no public address but the lab's own (special-
    purpose ones are what censors answer: 127.0.0.1, 10.10.34.35; the lab's client address
    itself is scrubbed by the probe)."""
    for case in CASES:
        if case.tier not in ("lab", "targeted"):
            continue
        text = case.source.read_text(encoding="utf-8")
        for found in _ADDRESS.findall(text):
            try:
                addr = ipaddress.ip_address(found)
            except ValueError:
                continue
            assert not addr.is_global or any(addr in n for n in _OURS), f"{case.id}: {found}"


def test_our_measurements_load_strictly_with_oonidata() -> None:
    """The run's facts and the follow-up's events keep our measurements OONI's format."""
    ours = [c for c in CASES if c.tier in ("lab", "targeted")]
    assert check_with_oonidata([json.dumps(c.measurement()) for c in ours]) == []
