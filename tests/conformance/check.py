"""Run :mod:`tests.conformance.oonidata_check` under ``.venv-ref`` from the probe's tests.

``check_with_oonidata(lines)`` returns the problems oonidata's parser finds (an empty list means
every line conforms). ``.venv-ref`` holds oonidata 0.3.0, apart from the probe's venv because it
pins an old ``cryptography``. If it is missing, this raises: a conformance test must never skip
silently.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / ".venv-ref" / "bin" / "python"
SCRIPT = Path(__file__).resolve().with_name("oonidata_check.py")


class ReferenceParserMissing(RuntimeError):
    """``.venv-ref`` (with oonidata) is not installed."""


def _ref_python(python: Path | None = None) -> Path:
    python = REF_PYTHON if python is None else python
    if not python.exists():
        raise ReferenceParserMissing(
            f"{python} not found: the oonidata reference venv is required for conformance "
            "tests (create it with `python3 -m venv .venv-ref && .venv-ref/bin/pip install "
            "oonidata==0.3.0`, or the project's setup target)"
        )
    return python


def check_with_oonidata(
    lines: Iterable[str | Mapping[str, Any]],
    *,
    timeout: float = 120,
    python: Path | None = None,
) -> list[str]:
    """Problems oonidata finds in these measurements (JSON text lines or dicts), one per entry.

    Each problem reads ``line N: <json path>: <what>`` with N counted from 1 in ``lines``.
    """
    text_lines = [
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    ]
    if any("\n" in line.rstrip("\n") for line in text_lines):
        raise ValueError("each measurement must be a single JSON line")
    stdin = "".join(line.rstrip("\n") + "\n" for line in text_lines)
    proc = subprocess.run(
        [str(_ref_python(python)), str(SCRIPT)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    problems = [line for line in proc.stdout.splitlines() if line.strip()]
    if (
        proc.returncode not in (0, 1)
        or proc.stderr.strip()
        or (proc.returncode == 1) != bool(problems)
    ):
        raise RuntimeError(
            f"oonidata checker failed (exit {proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
        )
    return problems


def check_file_with_oonidata(path: Path) -> list[str]:
    """Problems in a JSONL file (our ``results/*.jsonl``)."""
    with path.open(encoding="utf-8") as f:
        return check_with_oonidata([line for line in f if line.strip()])
