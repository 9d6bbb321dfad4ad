"""The probe in the censorship lab: every scenario reaches its expected failures and verdict.

One probe run from cp-client over every lab scenario, with the control vantage in cp-inet.
Per scenario we assert the OONI failure string at each stage, OONI's blocking/accessible and our
x_outcome; the verdict and confusion tables are printed (run pytest with -s to see them).
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
