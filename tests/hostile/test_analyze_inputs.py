"""`probe analyze` on hostile input: refused with one line (``--stdin``), or reported with file
and line/offset while the other inputs go on (batch).

Issue 12: a 400-digit integer in a time field (OverflowError), JSON nested 100,000 deep
(RecursionError, also with ``--format table``), a cut-off or non-gzip ``.jsonl.gz`` among the
inputs aborted the whole batch, ``--output`` on a file.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from probe.inputs import InputError, check_json_limits
from tests.hostile.cli import assert_refused, probe_cli

SAMPLE = Path(__file__).resolve().parents[2] / "results" / "samples" / "lab-demo.jsonl"


def _sample() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SAMPLE.read_text().splitlines()[0])
    return doc


def _huge_times(digits: int) -> dict[str, Any]:
    msmt = copy.deepcopy(_sample())
    big = int("9" * digits)
    for name in ("queries", "tcp_connect", "tls_handshakes", "requests", "network_events"):
        for event in msmt["test_keys"].get(name) or []:
            event["t0"] = event["t"] = big
    return msmt


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


STDIN_CASES = {
    "400-digit time": json.dumps(_huge_times(400)),
    "300-digit time": json.dumps(_huge_times(300)).replace("99999", "99999", 1),
    "deep 100000 object": _deep(100_000),
    "deep 100000 array": "[" * 100_000 + "]" * 100_000,
    "deep 100 (over the limit)": _deep(100),
    "NaN": '{"test_keys": {"t": NaN}}',
    "Infinity": '{"test_runtime": Infinity}',
    "2^64-1": '{"test_runtime": 18446744073709551615}',
    "not an object": "[1, 2, 3]",
    "empty": "",
    "two documents": "{} {}",
    "binary": "\x00\x01\x02",
}


@pytest.mark.parametrize("fmt", ["json", "table"])
@pytest.mark.parametrize("case", sorted(STDIN_CASES))
def test_stdin_hostile_documents_are_refused(
    case: str, fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = STDIN_CASES[case].encode()
    result = probe_cli(
        ["analyze", "--stdin", "--format", fmt], stdin=data, capsys=capsys, monkeypatch=monkeypatch
    )
    if case == "300-digit time":
        # parsed as a finite double (1e299): a document like any other, analysed
        assert result.code == 0, result.stderr
        return
    assert_refused(result, "stdin")


def test_stdin_not_utf8_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.dumps(_sample(), ensure_ascii=False).encode("utf-8").replace(b"}", b"\xff}", 1)
    result = probe_cli(["analyze", "--stdin"], stdin=data, capsys=capsys, monkeypatch=monkeypatch)
    assert_refused(result, "stdin")


def test_stdin_good_document_still_works(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.dumps(_sample()).encode()
    result = probe_cli(
        ["analyze", "--stdin", "--format", "table"],
        stdin=data,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert result.code == 0, result.stderr
    assert "x_outcome" in result.stdout


def test_json_limits_walk_iteratively() -> None:
    doc: Any = 1
    for _ in range(200_000):  # far deeper than the recursion limit
        doc = [doc]
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        check_json_limits(doc, what="x")
    with pytest.raises(InputError, match=r"beyond 64 bits at \$\.a\[1\]"):
        check_json_limits({"a": [0, 1 << 70]}, what="x")
    with pytest.raises(InputError, match="not finite"):
        check_json_limits({"a": float("nan")}, what="x")
    check_json_limits(_sample(), what="x")


# --- batch ------------------------------------------------------------------------------------


def _write_inputs(folder: Path) -> None:
    line = json.dumps(_sample()) + "\n"
    folder.mkdir()
    (folder / "a-good.jsonl").write_text(line * 3)
    whole = gzip.compress((line * 50).encode())
    (folder / "b-cut.jsonl.gz").write_bytes(whole[:-40])  # the trailer and a bit of data
    (folder / "c-not-gzip.jsonl.gz").write_bytes(line.encode())
    (folder / "d-garbage-gzip.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    hostile = [
        json.dumps(_huge_times(400)),
        _deep(100_000),
        json.dumps(_huge_times(300)),
        "{" * 10,
    ]
    (folder / "e-hostile-lines.jsonl").write_text("\n".join(hostile) + "\n")
    (folder / "f-good.jsonl.gz").write_bytes(gzip.compress((line * 2).encode()))


def test_batch_goes_on_past_damaged_files_and_hostile_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "in"
    _write_inputs(inputs)
    out = tmp_path / "dataset"
    result = probe_cli(
        ["analyze", str(inputs), "--output", str(out), "--workers", "0", "--format", "table"],
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [w for w in result.stderr.splitlines() if w.startswith("probe analyze: warning")]
    assert any("in/b-cut.jsonl.gz" in w and "cut off" in w and "offset" in w for w in warnings)
    assert any("in/c-not-gzip.jsonl.gz" in w and "not a gzip file" in w for w in warnings)
    assert any("in/d-garbage-gzip.jsonl.gz" in w and "offset" in w for w in warnings)
    summary = json.loads((out / "_summary.json").read_text())
    unreadable = {m["file"]: m for m in summary["malformed"] if m["kind"] == "unreadable"}
    assert set(unreadable) == {
        "in/b-cut.jsonl.gz",
        "in/c-not-gzip.jsonl.gz",
        "in/d-garbage-gzip.jsonl.gz",
    }
    cut = unreadable["in/b-cut.jsonl.gz"]
    assert cut["line"] > 0  # the whole lines before the cut were read
    lines = {(m["file"], m["line"]) for m in summary["malformed"] if m["kind"] != "unreadable"}
    assert {("in/e-hostile-lines.jsonl", n) for n in (1, 2, 4)} <= lines
    # the good files, the lines before the cut and the 300-digit line (a finite double)
    table = pq.read_table(out / "measurements")
    assert table.num_rows == 3 + cut["line"] + 1 + 2


def test_batch_refuses_an_output_that_is_a_file_or_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_sample()) + "\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    for output, needle in ((afile, "not a directory"), (full, "not empty")):
        result = probe_cli(
            ["analyze", str(good), "--output", str(output)], capsys=capsys, monkeypatch=monkeypatch
        )
        assert_refused(result, "--output", needle)
    assert (full / "keep.txt").read_text() == "mine"
