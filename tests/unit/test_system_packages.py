"""The fresh-machine check: one list of Debian packages, one line naming what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import system

REPO = Path(__file__).resolve().parents[2]


def _ensure(packages: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CENSORPROBE_PACKAGES": str(packages), system.NO_INSTALL_ENV: "1"}
    return subprocess.run(
        [sys.executable, "-m", "tests.system", "ensure"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_packages_stop_at_once_with_one_line(tmp_path: Path) -> None:
    listing = tmp_path / "packages.txt"
    listing.write_text(
        "# comment\n"
        "coreutils        ls                     always\n"
        "no-such-tool-a   /nonexistent/tool-a    always\n"
        "no-such-tool-b   no-such-command-b      always\n"
    )
    proc = _ensure(listing)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "make test needs these Debian packages: no-such-tool-a no-such-tool-b "
        "(as root: apt-get install no-such-tool-a no-such-tool-b)"
    ]


def test_nothing_missing_is_silent(tmp_path: Path) -> None:
    listing = tmp_path / "packages.txt"
    listing.write_text("coreutils ls always\nbash /bin/bash always\n")
    proc = _ensure(listing)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_the_one_list_is_what_ci_and_make_use() -> None:
    names = [p.name for p in system.load()]
    assert {"chromium", "knot-dnsutils", "nginx-light", "unbound", "nftables"} <= set(names)
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m tests.system ensure" in ci and "apt-get install" not in ci
    assert "$(PYTHON) -m tests.system ensure" in (REPO / "Makefile").read_text()
    # without root only the packages every test needs are required (the lab tests skip)
    assert all(p.needed_by == "always" for p in system.wanted(system.load(), root=False))
