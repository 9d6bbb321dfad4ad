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
