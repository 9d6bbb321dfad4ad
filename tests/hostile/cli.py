"""Running the ``probe`` command line in this process (the public entry point, without the cost
of a new interpreter per case) and checking the promise on bad input: one line, status 2.

``probe run`` measures nothing without consent, so its cases run as a volunteer who gave it
(``probe onboard --yes --no-upload``: the ``volunteer_env`` fixture's config home, or
:func:`agree` on the test's own ``--config`` file): a refusal then comes from the input under
test, never from the consent gate.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from probe.cli import main


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def probe_cli(
    argv: Sequence[str],
    *,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: bytes = b"",
    volunteer: Mapping[str, str] | None = None,
) -> Result:
    """``probe ARGV`` with ``stdin``; argparse's exits become a status, never a raise.

    ``volunteer`` (the ``volunteer_env`` fixture) is whose config home the command reads; a
    ``run`` needs one. A ``run`` that is not refused would measure: it gets no control and only
    a loopback STUN server, so that even then nothing leaves the machine."""
    argv = list(argv)
    if argv and argv[0] == "run":
        assert volunteer is not None, "probe run needs a volunteer who consented (volunteer_env)"
        argv += ["--no-control", "--stun-server", "127.0.0.1:9"]
    home = volunteer["XDG_CONFIG_HOME"] if volunteer is not None else "/nonexistent"
    monkeypatch.setenv("XDG_CONFIG_HOME", home)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return Result(code, out, err)


def agree(
    config: Path, *, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Consent recorded in the test's own config file by the real ``probe onboard --yes
    --no-upload --config CONFIG`` (its other settings are kept as they are); returns it."""
    result = probe_cli(
        ["onboard", "--yes", "--no-upload", "--config", str(config)],
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert result.code == 0, result.stderr
    return config


def assert_refused(result: Result, *needles: str) -> None:
    """Status 2, exactly one line on stderr (naming ``needles``), no traceback, short."""
    lines = result.stderr.strip().splitlines()
    assert result.code == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines[0]) < 400, lines[0][:400]
    for needle in needles:
        assert needle in lines[0], lines[0]


def writable_tmp() -> str:
    return os.environ.get("TMPDIR", "/tmp")
