"""The probe in the censorship lab: every scenario reaches its expected failures and verdict.

``probe run`` from cp-client over every lab scenario, with the control vantage in cp-inet: one
run for most of them at once, then the scenarios of each [[run]] (tests/lab/demo.py,
``batches``): the SNI-throttled name after the open sites that teach the run its baseline, and
every site behind a slow link. Per scenario we assert the OONI failure string at each stage,
OONI's blocking/accessible and our x_outcome; the verdict and confusion tables are printed
(run pytest with -s to see them). The run's facts (issue 16) are checked in every measurement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.check import check_with_oonidata
from tests.lab import lab as labmod
from tests.lab import model as m
from tests.lab.demo import Outcome, report, run_scenarios
from tests.lab.slowlink import NORMAL_RATE, default_rate

pytestmark = pytest.mark.lab

_SITES, SCENARIOS = m.load()


@pytest.fixture(scope="module")
def outcomes(
    lab: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    lab_report: Callable[[str], None],
) -> dict[str, Outcome]:
    labmod.control_start()
    out = tmp_path_factory.mktemp("lab-run") / "lab.jsonl"
    results = run_scenarios(lab, out)
    lab_report(report(results))
    return {o.scenario.id: o for o in results}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(outcomes: dict[str, Outcome], scenario: m.Scenario) -> None:
    outcome = outcomes[scenario.id]
    assert outcome.mismatches() == [], json.dumps(outcome.keys.get("x_evidence"))


def test_not_censored_cases_are_never_called_blocked(outcomes: dict[str, Outcome]) -> None:
    for o in outcomes.values():
        if o.scenario.blocking is False:
            assert o.keys.get("blocking") is False, o.scenario.id


def test_lab_measurements_load_strictly_with_oonidata(outcomes: dict[str, Outcome]) -> None:
    lines = [json.dumps(o.measurement) for o in outcomes.values()]
    assert check_with_oonidata(lines) == []


def test_client_address_never_appears(lab: dict[str, Any], outcomes: dict[str, Outcome]) -> None:
    """The volunteer's address (cp-client's) is scrubbed from every measurement."""
    client = lab["client_address"]
    for o in outcomes.values():
        text = json.dumps(o.measurement)
        assert client not in text, o.scenario.id
        assert o.measurement["probe_ip"] == "127.0.0.1"


def test_demo_output_mentions_every_scenario(outcomes: dict[str, Outcome]) -> None:
    text = report(list(outcomes.values()))
    for scenario in SCENARIOS:
        assert scenario.id in text
    assert Path(m.SCENARIOS_FILE).exists()


def test_batch_reanalysis_agrees_with_the_probe(
    outcomes: dict[str, Outcome], tmp_path: Path
) -> None:
    """Researchers' pipeline over the lab output: same verdicts, recomputed from the facts."""
    import subprocess
    import sys

    import pyarrow.dataset as ds

    src = tmp_path / "lab.jsonl"
    src.write_text("".join(json.dumps(o.measurement) + "\n" for o in outcomes.values()))
    out = tmp_path / "dataset"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "probe",
            "analyze",
            str(src),
            "--output",
            str(out),
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    table = ds.dataset(out / "measurements", format="parquet", partitioning="hive").to_table(
        columns=["input", "outcome", "blocking"]
    )
    got = dict(
        zip(table.column("input").to_pylist(), table.column("outcome").to_pylist(), strict=True)
    )
    for o in outcomes.values():
        assert got[o.scenario.url] == o.keys["x_outcome"], o.scenario.id


def test_every_measurement_records_the_run_facts(outcomes: dict[str, Outcome]) -> None:
    for sid, o in outcomes.items():
        tk = o.keys
        assert tk["x_run_baseline"]["version"] == 1, sid
        canary = tk["x_nxdomain_canary"]
        assert canary["hostname"].startswith("cp-") and canary["hostname"].endswith(".com"), sid
        assert canary["addresses"] == [m.ISP_RESOLVER], sid  # the lab's ISP rewrites NXDOMAIN


def test_a_run_learns_its_baseline_from_the_targets_before(outcomes: dict[str, Outcome]) -> None:
    run = [o for o in outcomes.values() if o.scenario.run == "sni-throttle"]
    seen = [o.keys["x_run_baseline"]["targets_seen"] for o in run]
    assert seen == list(range(len(run)))  # one after the other, none counts itself


def test_the_throttled_small_page_is_followed_up(outcomes: dict[str, Outcome]) -> None:
    """The follow-up under the same SNI crawls, counted in the connection's bytes; the
    innocuous SNI to the same address is not slowed (the cap is keyed on the name)."""
    tk = outcomes["http-throttled-sni-small-page"].keys
    assert len(tk["x_run_baseline"]["samples"]) >= 3
    assert tk["x_throughput_follow_up"]["url"] == "https://throttled-sni.lab.test/"
    sni = [h for h in tk["tls_handshakes"] if "x_diag=throughput_sni" in h["tags"]]
    real = [h for h in tk["tls_handshakes"] if "x_diag=throughput" in h["tags"]]
    assert len(sni) == 1 and len(real) == 1
    assert sni[0]["t"] - sni[0]["t0"] < (real[0]["t"] - real[0]["t0"]) / 5
    assert tk["x_rule_id"] == "http.throttled_follow_up"


def test_nothing_is_followed_up_or_throttled_on_a_slow_link(
    outcomes: dict[str, Outcome],
) -> None:
    for o in outcomes.values():
        if o.scenario.run == "slow-link":
            tk = o.keys
            assert "x_throughput_follow_up" not in tk, o.scenario.id
            assert tk["x_outcome"] != "http/throttled" and tk["blocking"] is False, o.scenario.id
    assert default_rate().lower() == NORMAL_RATE  # the slow link was removed after its run
