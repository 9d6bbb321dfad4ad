"""The committed sample measurements (written by `probe run` in the lab) stay readable by OONI's
parser and re-analyse to the verdicts the probe wrote: a regression net for the analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe.analysis import analyze
from probe.analysis.fingerprints import builtin
from tests.conformance.check import check_with_oonidata

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "results" / "samples").glob("*.jsonl"))
LINES = [line for path in SAMPLES for line in path.read_text(encoding="utf-8").splitlines()]


def test_there_are_samples() -> None:
    assert len(LINES) >= 5


@pytest.mark.parametrize("line", LINES, ids=[json.loads(x)["input"] for x in LINES])
def test_reanalysis_matches_what_the_probe_wrote(line: str) -> None:
    msmt = json.loads(line)
    verdict = analyze(msmt, fingerprints=builtin())
    for key in ("blocking", "accessible", "x_outcome", "x_rule_id", "dns_consistency"):
        assert verdict[key] == msmt["test_keys"][key], key


def test_samples_load_strictly_with_oonidata() -> None:
    assert check_with_oonidata(LINES) == []
