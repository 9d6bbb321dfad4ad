"""`probe analyze --stdin`: one measurement in, verdict keys out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QA = REPO / ".." / "shared" / "data" / "ooni-qa"


def _run(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", "analyze", *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip


def test_stdin_json() -> None:
    text = (QA / "tcpBlockingConnectTimeout" / "measurement.json").read_text(encoding="utf-8")
    out = _run("--stdin", "--format", "json", stdin=text)
    assert out.returncode == 0, out.stderr
    v = json.loads(out.stdout)
    assert (v["blocking"], v["x_outcome"], v["x_rule_id"]) == (
        "tcp_ip",
        "tcp/timeout",
        "tcp.timeout",
    )


def test_stdin_table_and_errors() -> None:
    text = (QA / "successWithHTTPS" / "measurement.json").read_text(encoding="utf-8")
    out = _run("--stdin", "--format", "table", stdin=text)
    assert out.returncode == 0
    assert any(line.split() == ["x_outcome", '"ok"'] for line in out.stdout.splitlines())
    bad = _run("--stdin", stdin="not json")
    assert bad.returncode == 2 and bad.stderr.startswith("probe analyze: error:")
    assert "Traceback" not in bad.stderr
    none = _run(stdin="")
    assert none.returncode == 2


# --- every option, in both forms (issue 13: none silently ignored) -----------------------------

BOGON = QA / "dnsBlockingBOGON" / "measurement.json"
DIFF = QA / "httpDiffWithConsistentDNS" / "measurement.json"


def _batch(
    tmp: Path, inputs: list[Path], *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp / "dataset"
    done = _run(*map(str, inputs), "--output", str(out), "--workers", "0", *args, stdin="")
    return done, out


def _outcomes(dataset: Path) -> dict[str, tuple[str, str | None]]:
    import pyarrow.dataset as ds

    table = ds.dataset(dataset / "measurements", format="parquet", partitioning="hive").to_table(
        columns=["input", "outcome", "fingerprint_id"]
    )
    rows = table.to_pylist()
    return {r["input"]: (r["outcome"], r["fingerprint_id"]) for r in rows}


def _jsonl(tmp: Path, *paths: Path) -> Path:
    src = tmp / "in.jsonl"
    src.write_text("".join(json.dumps(json.loads(p.read_text())) + "\n" for p in paths))
    return src


def test_public_ranges_in_both_forms(tmp_path: Path) -> None:
    text = BOGON.read_text(encoding="utf-8")
    assert json.loads(_run("--stdin", stdin=text).stdout)["x_outcome"] == "dns/bogon"
    public = _run("--stdin", "--public-ranges", "10.0.0.0/8", stdin=text)
    assert json.loads(public.stdout)["x_outcome"] == "dns/unexpected-address"
    src = _jsonl(tmp_path, BOGON)
    url = json.loads(text)["input"]
    plain, out = _batch(tmp_path / "a", [src])
    assert plain.returncode == 0, plain.stderr
    assert _outcomes(out)[url][0] == "dns/bogon"
    ranged, out = _batch(tmp_path / "b", [src], "--public-ranges", "10.0.0.0/8")
    assert ranged.returncode == 0, ranged.stderr
    assert _outcomes(out)[url][0] == "dns/unexpected-address"
    for bad in (_run("--stdin", "--public-ranges", "nope", stdin=text),
                _batch(tmp_path / "c", [src], "--public-ranges", "nope")[0]):  # fmt: skip
        assert bad.returncode == 2 and bad.stderr.startswith("probe analyze: error: --public-")


def test_fingerprints_dir_in_both_forms(tmp_path: Path) -> None:
    fps = tmp_path / "fps"
    fps.mkdir()
    (fps / "fingerprints_http.csv").write_text(
        "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,"
        "expected_countries,source,exp_url,notes\n"
        "test.qa_denied,nat,,body,contains,cannot be served in your jurisdiction,5,,test,,\n",
        encoding="utf-8",
    )
    text = DIFF.read_text(encoding="utf-8")
    assert json.loads(_run("--stdin", stdin=text).stdout)["x_outcome"] == "http/diff"
    hit = json.loads(_run("--stdin", "--fingerprints-dir", str(fps), stdin=text).stdout)
    assert (hit["x_outcome"], hit["x_fingerprint_id"]) == ("http/blockpage", "test.qa_denied")
    src = _jsonl(tmp_path, DIFF)
    done, out = _batch(tmp_path / "a", [src], "--fingerprints-dir", str(fps))
    assert done.returncode == 0, done.stderr
    assert _outcomes(out)[json.loads(text)["input"]] == ("http/blockpage", "test.qa_denied")
    nope = str(tmp_path / "nope")
    for bad in (_run("--stdin", "--fingerprints-dir", nope, stdin=text),
                _batch(tmp_path / "b", [src], "--fingerprints-dir", nope)[0]):  # fmt: skip
        assert bad.returncode == 2 and "--fingerprints-dir" in bad.stderr


def test_format_in_both_forms(tmp_path: Path) -> None:
    import csv

    text = BOGON.read_text(encoding="utf-8")
    rows = list(csv.reader(_run("--stdin", "--format", "csv", stdin=text).stdout.splitlines()))
    assert len(rows) == 2 and dict(zip(*rows, strict=True))["x_outcome"] == "dns/bogon"
    table = _run("--stdin", "--format", "table", stdin=text).stdout
    assert any(line.split() == ["x_outcome", '"dns/bogon"'] for line in table.splitlines())
    src = _jsonl(tmp_path, BOGON, DIFF)
    done, out = _batch(tmp_path / "csv", [src], "--format", "csv")
    assert done.returncode == 0, done.stderr
    header, row = list(csv.reader(done.stdout.splitlines()))
    summary = dict(zip(header, row, strict=True))
    assert (summary["output"], summary["lines"], summary["measurements"]) == (str(out), "2", "2")
    done, _ = _batch(tmp_path / "json", [src], "--format", "json")
    assert json.loads(done.stdout)["measurements"] == 2
    done, _ = _batch(tmp_path / "table", [src], "--format", "table")
    assert done.stdout.startswith("read 2 records from 1 files")


def test_output_in_both_forms(tmp_path: Path) -> None:
    text = BOGON.read_text(encoding="utf-8")
    target = tmp_path / "verdict.json"
    done = _run("--stdin", "--output", str(target), stdin=text)
    assert done.returncode == 0 and done.stdout == ""
    assert json.loads(target.read_text())["x_outcome"] == "dns/bogon"
    src = _jsonl(tmp_path, BOGON)
    missing = _run(str(src), stdin="")
    assert missing.returncode == 2 and "--output DIR is required" in missing.stderr
    (tmp_path / "file").write_text("x")
    not_dir = _run(str(src), "--output", str(tmp_path / "file"), stdin="")
    assert not_dir.returncode == 2 and "exists and is not a directory" in not_dir.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    full = _run(str(src), "--output", str(tmp_path / "full"), stdin="")
    assert full.returncode == 2 and "exists and is not empty" in full.stderr
    as_dir = _run("--stdin", "--output", str(tmp_path / "full"), stdin=text)
    assert as_dir.returncode == 2 and "is a directory, not a file" in as_dir.stderr


def test_workers_and_scheduler_are_batch_options(tmp_path: Path) -> None:
    text = BOGON.read_text(encoding="utf-8")
    for option in (("--workers", "2"), ("--scheduler", "tcp://127.0.0.1:1")):
        done = _run("--stdin", *option, stdin=text)
        assert done.returncode == 2 and f"{option[0]} is for input paths" in done.stderr
    src = _jsonl(tmp_path, BOGON)
    serial, out = _batch(tmp_path / "a", [src])
    assert serial.returncode == 0 and json.loads(serial.stdout)["executor"] == "serial"
    both = _run("--stdin", str(src), stdin=text)
    assert both.returncode == 2 and "not both" in both.stderr


def test_stdin_analyses_app_tests_through_the_registry() -> None:
    sample = next((QA.parent / "ooni-samples").glob("explorer-fixture-IR-signal-nxdomain-*.json"))
    data = json.loads(sample.read_text(encoding="utf-8"))
    data = data.get("raw_measurement", data)
    v = json.loads(_run("--stdin", stdin=json.dumps(data)).stdout)
    assert (v["x_app_verdict"], v["x_rule_id"], v["x_outcome"]) == (
        "blocked", "apps.ooni.blocked", "dns/nxdomain",
    )  # fmt: skip
    other = _run("--stdin", stdin=json.dumps({"test_name": "dnscheck", "test_keys": {}}))
    assert other.returncode == 2 and "no verdict for test_name 'dnscheck'" in other.stderr
