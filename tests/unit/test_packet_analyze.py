"""`probe analyze` knows the packet-level test (issue 15): its registry entry gives
`censor_trace` measurements their verdict in both forms, `--stdin` and the batch, and the web
measurements of `probe run --packet-level` keep their web verdict with the packet keys.

The measurements are the lab's goldens (tests/goldens/lab: `probe packet` and `probe run
--packet-level` in the censorship lab); the verdicts must be exactly the goldens' ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from probe import registry
from tests.goldens import tiers
from tests.lab import model as lab

REPO = Path(__file__).resolve().parents[2]
TRACES = [tiers.GOLDENS / "lab" / s.id for s in lab.load_packet_scenarios()]
FOLLOWED = [tiers.GOLDENS / "lab" / name for name in tiers.packet_level_cases()]


def _analyze(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", "analyze", *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, check=False, timeout=300,
    )  # fmt: skip


def _read(directory: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / name).read_text(encoding="utf-8"))
    return data


def test_stdin_gives_a_censor_trace_its_verdict() -> None:
    for directory in (TRACES[0], TRACES[-1], FOLLOWED[0]):
        text = (directory / tiers.MEASUREMENT).read_text(encoding="utf-8")
        done = _analyze("--stdin", "--format", "json", stdin=text)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == _read(directory, tiers.VERDICT), directory.name


def test_the_batch_gives_censor_trace_rows_their_verdict(tmp_path: Path) -> None:
    import pyarrow.dataset as ds

    source = tmp_path / "in.jsonl"
    lines = [json.dumps(_read(d, tiers.MEASUREMENT)) for d in [*TRACES, *FOLLOWED]]
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "dataset"
    done = _analyze(str(source), "--output", str(out), "--workers", "0")
    assert done.returncode == 0, done.stderr
    columns = ["test_name", "source_line", "outcome", "rule_id", "anomaly", "verdict_source"]
    table = ds.dataset(out / "measurements", format="parquet", partitioning="hive")
    rows = {r["source_line"]: r for r in table.to_table(columns=columns).to_pylist()}
    assert len(rows) == len(lines)
    for line, directory in enumerate([*TRACES, *FOLLOWED], start=1):
        verdict, row = _read(directory, tiers.VERDICT), rows[line]
        source = "packet" if row["test_name"] == "censor_trace" else "analysis"
        assert (row["outcome"], row["rule_id"], row["verdict_source"]) == (
            verdict["x_outcome"], verdict["x_rule_id"], source,
        ), directory.name  # fmt: skip
        assert row["anomaly"] == registry.spec(row["test_name"]).verdict(verdict).anomaly
    assert {r["test_name"] for r in rows.values()} == {"censor_trace", "web_connectivity"}
