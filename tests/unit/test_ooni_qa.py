"""Agreement with OONI's Web Connectivity QA suite (../shared/data/ooni-qa, see its README).

Verdict keys are stripped, the measurement is analysed, ``blocking``/``accessible`` are compared
with expected.tsv as JSON values. Every disagreement must be a deliberate one listed in the
table of docs/verdicts.md.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from probe.analysis import analyze
from probe.analysis.fingerprints import builtin

REPO = Path(__file__).resolve().parents[2]
QA = REPO / ".." / "shared" / "data" / "ooni-qa"
STRIP = {
    "blocking", "accessible", "dns_consistency", "x_status", "body_length_match",
    "body_proportion", "headers_match", "status_code_match", "title_match",
}  # fmt: skip


def _literal(cell: str) -> Any:
    return {"true": True, "false": False, "null": None}.get(cell, cell)


def _rows() -> list[dict[str, str]]:
    with (QA / "expected.tsv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _documented() -> set[str]:
    text = (REPO / "docs" / "verdicts.md").read_text(encoding="utf-8")
    section = text.split("## Disagreements with OONI's QA suite", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z0-9-]+)` \|", section, flags=re.MULTILINE))


def _classify(scenario: str) -> dict[str, Any]:
    m = json.loads((QA / scenario / "measurement.json").read_text(encoding="utf-8"))
    tk = m["test_keys"]
    for key in list(tk):
        if key in STRIP or (key.startswith("x_") and key.endswith("_flags")):
            del tk[key]
    return analyze(m, fingerprints=builtin())


def test_qa_suite_is_present() -> None:
    assert len(_rows()) == 56, "../shared/data/ooni-qa is missing or changed"


@pytest.mark.parametrize("origin,minimum", [("generated", 0.95), ("manual", 0.0)])
def test_agreement_with_ooni(
    origin: str, minimum: float, capsys: pytest.CaptureFixture[str]
) -> None:
    documented = _documented()
    rows = [r for r in _rows() if r["origin"] == origin]
    agree, undocumented = 0, []
    lines = [f"{'scenario':58} {'OONI':22} {'ours':22} outcome"]
    for r in rows:
        v = _classify(r["scenario"])
        expected = (_literal(r["expected_blocking"]), _literal(r["expected_accessible"]))
        got = (v["blocking"], v["accessible"])
        ok = expected == got
        agree += ok
        if not ok and r["scenario"] not in documented:
            undocumented.append(r["scenario"])
        mark = "  " if ok else "XX"
        lines.append(f"{mark}{r['scenario']:56} {expected!s:22} {got!s:22} {v['x_outcome']}")
    rate = agree / len(rows)
    with capsys.disabled():
        print(f"\n{origin}: {agree}/{len(rows)} agree ({rate:.0%})\n" + "\n".join(lines))
    assert rate >= minimum
    assert undocumented == [], f"disagreements missing from docs/verdicts.md: {undocumented}"


def test_documented_disagreements_still_disagree() -> None:
    """The docs table lists only real disagreements (it must not rot)."""
    rows = {r["scenario"]: r for r in _rows()}
    for scenario in _documented():
        r = rows[scenario]
        v = _classify(scenario)
        expected = (_literal(r["expected_blocking"]), _literal(r["expected_accessible"]))
        assert (v["blocking"], v["accessible"]) != expected, scenario
