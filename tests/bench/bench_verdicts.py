"""`make bench`: how the verdicts agree with OONI and with the adjudicated real corpus.

    .venv/bin/python -m tests.bench.bench_verdicts

Prints, for the rules in force (``RULES_VERSION``):

1. OONI's Web Connectivity QA suite (../shared/data/ooni-qa): agreement on ``blocking`` and
   ``accessible`` with the verdict OONI's probe wrote, generated scenarios and real ``manual-*``
   runs apart (tests/unit/test_ooni_qa.py asserts it);
2. the real-measurement corpus (tests/corpus): agreement with OONI's recorded verdicts and with
   the adjudicated ones (tests/unit/test_corpus.py asserts the latter on the corpus goldens),
   with the measurements where we differ;
3. the analysis cost per measurement over the corpus (a figure, never asserted).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Any

from probe.analysis import RULES_VERSION, analyze
from probe.analysis.fingerprints import builtin
from tests import corpus

QA = corpus.SHARED / "ooni-qa"


def _literal(cell: str) -> Any:
    return {"true": True, "false": False, "null": None}.get(cell, cell)


def qa_agreement() -> list[str]:
    with (QA / "expected.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    fps = builtin()
    lines = []
    for origin in ("generated", "manual"):
        subset = [r for r in rows if r["origin"] == origin]
        differ = []
        for r in subset:
            m = json.loads((QA / r["scenario"] / "measurement.json").read_text(encoding="utf-8"))
            v = analyze(corpus.strip_verdict(m), fingerprints=fps)
            want = (_literal(r["expected_blocking"]), _literal(r["expected_accessible"]))
            if (v["blocking"], v["accessible"]) != want:
                differ.append(f"{r['scenario']} ({v['x_outcome']})")
        agree = len(subset) - len(differ)
        lines.append(
            f"OONI QA {origin}: {agree}/{len(subset)} agree ({agree / len(subset):.0%})"
            + (f"; differ: {', '.join(differ)}" if differ else "")
        )
    return lines


def corpus_cost(rounds: int = 20) -> str:
    fps = corpus.fingerprints()
    measurements = [corpus.measurement(e) for e in corpus.entries()]
    start = time.perf_counter()
    for _ in range(rounds):
        for m in measurements:
            analyze(m, fingerprints=fps)
    per = (time.perf_counter() - start) / (rounds * len(measurements))
    return (
        f"analysis cost over the corpus: {per * 1e6:.0f} us per measurement "
        f"({len(measurements)} measurements x {rounds}, OONI + Censored Planet + our fingerprints)"
    )


def main(argv: list[str]) -> int:
    print(f"rules {RULES_VERSION}")
    for line in qa_agreement():
        print(line)
    print(corpus.summary(corpus.score(analyze)))
    print(corpus_cost(rounds=3 if "--quick" in argv else 20))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
