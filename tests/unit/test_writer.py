"""probe.writer: whole lines only; a torn tail is moved aside; a failed write is rolled back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe.writer import (
    TORN_SUFFIX,
    LineWriter,
    WriteError,
    count_lines,
    read_resume_state,
    repair,
)
from tests.hostile.disk import small_disk


def _line(url: str, report: str = "R1") -> bytes:
    msmt = {"input": url, "report_id": report, "test_start_time": "2024-01-01 00:00:00",
            "test_name": "web_connectivity", "probe_cc": "ZZ", "probe_asn": "AS0",
            "test_keys": {}}  # fmt: skip
    return (json.dumps(msmt) + "\n").encode()


def test_repair_moves_a_torn_tail_aside(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    good = _line("https://a.test/") + _line("https://b.test/")
    out.write_bytes(good + b'{"input": "https://c.te')
    fixed = repair(out)
    assert fixed.moved == len(b'{"input": "https://c.te')
    assert out.read_bytes() == good
    assert fixed.side_file == tmp_path / ("o.jsonl" + TORN_SUFFIX)
    assert fixed.side_file.read_bytes() == b'{"input": "https://c.te\n'
    assert repair(out).moved == 0  # idempotent


def test_repair_of_a_file_that_is_all_torn(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_bytes(b"x" * 200_000)  # longer than one backwards block, no newline at all
    assert repair(out).moved == 200_000
    assert out.read_bytes() == b""


def test_repair_leaves_whole_files_and_missing_files_alone(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    assert repair(out).moved == 0
    out.write_bytes(_line("https://a.test/"))
    assert repair(out).moved == 0 and not (tmp_path / "o.jsonl.torn").exists()


def test_resume_state_reads_report_and_inputs(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    app = json.dumps({"input": None, "report_id": "R1", "test_keys": {"x_app": "signal"}})
    out.write_bytes(
        _line("https://a.test/") + b"not json\n" + _line("https://b.test/", "R2")
        + app.encode() + b"\n[1]\n" + b'{"torn'
    )  # fmt: skip
    state = read_resume_state(out)
    assert state.done == {"https://a.test/", "https://b.test/", "app:signal"}
    assert state.report_id == "R1" and state.test_start_time == "2024-01-01 00:00:00"
    assert (state.probe_cc, state.probe_asn, state.test_name) == ("ZZ", "AS0", "web_connectivity")
    assert state.lines == 5 and state.bad_lines == 3


def test_write_error_rolls_back_to_the_last_whole_line(tmp_path: Path) -> None:
    with pytest.raises(WriteError) as info, LineWriter(Path("/dev/full")) as out:
        out.write(_line("https://a.test/"))
    assert info.value.safe_lines == 0
    assert "No space left on device" in str(info.value)


def test_line_writer_counts_and_appends(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "o.jsonl"
    with LineWriter(out) as writer:
        writer.write(_line("https://a.test/"))
        writer.write(_line("https://b.test/"))
        assert writer.lines == 2
    with LineWriter(out) as writer:
        assert writer.lines == 2
        writer.write(_line("https://c.test/"))
    assert count_lines(out) == 3


def test_open_failure_is_a_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError), LineWriter(blocker / "o.jsonl"):
        pass


def test_partial_write_is_truncated(tmp_path: Path) -> None:
    """A real short filesystem: a tmpfs of 16 KiB (root only, as in CI)."""
    with small_disk(tmp_path / "mnt", "16k") as mnt:
        out = mnt / "o.jsonl"
        line = b'{"input": "x", "pad": "' + b"p" * 6000 + b'"}\n'
        with pytest.raises(WriteError) as info, LineWriter(out) as writer:
            for _ in range(10):
                writer.write(line)
        assert info.value.safe_lines == writer.lines >= 1
        assert out.read_bytes() == line * writer.lines
