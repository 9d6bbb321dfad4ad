"""The Debian packages the test suite needs: checked before anything runs, installed when root.

``.ci/packages.txt`` is the one list (package, the command or file that shows it is installed,
and who needs it: ``always``, or ``lab`` for the root-only censorship lab). ``python3 -m
tests.system ensure`` (the first thing ``make test`` and ``.ci/run`` do) finds what is missing
and, as root, installs it with apt-get; otherwise it stops at once with one line naming the
packages. Without root the lab tests skip, so only the ``always`` packages are required then.

Tests that use a tool call :func:`require` first: a missing tool is a one-line failure naming
its package, never a cryptic assertion (``NO-REPLY`` from a missing ``kdig``).

Standard library only: it runs before the virtual environment exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LIST = Path(__file__).resolve().parents[1] / ".ci" / "packages.txt"
#: set to 1 to never install (only say what is missing); tests of this module set it
NO_INSTALL_ENV = "CENSORPROBE_NO_INSTALL"


@dataclass(frozen=True)
class Package:
    name: str
    #: a command on PATH, or an absolute path, present when the package is installed
    shows: str
    #: "always", or "lab" (only needed where the lab can run: root)
    needed_by: str

    def installed(self) -> bool:
        if self.shows.startswith("/"):
            return Path(self.shows).exists()
        return shutil.which(self.shows) is not None or any(
            (Path(d) / self.shows).exists() for d in ("/usr/sbin", "/sbin")
        )


def load(path: Path | None = None) -> list[Package]:
    path = path or Path(os.environ.get("CENSORPROBE_PACKAGES", LIST))
    out: list[Package] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            name, shows, needed_by = fields
            out.append(Package(name, shows, needed_by))
    return out


def is_root() -> bool:
    return os.geteuid() == 0


def wanted(packages: list[Package], *, root: bool) -> list[Package]:
    """Every package as root (the lab runs); without root only the ``always`` ones."""
    return [p for p in packages if root or p.needed_by == "always"]


def missing(*, root: bool | None = None) -> list[Package]:
    root = is_root() if root is None else root
    return [p for p in wanted(load(), root=root) if not p.installed()]


def _install(names: list[str]) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *names],
    ]
    for step in steps:
        if subprocess.run(step, env=env, stdout=subprocess.DEVNULL, check=False).returncode:
            return False
    return True


def ensure() -> int:
    """Install what is missing (root), else one line naming it; 0 when everything is there."""
    absent = missing()
    if not absent:
        return 0
    names = [p.name for p in absent]
    if is_root() and shutil.which("apt-get") and os.environ.get(NO_INSTALL_ENV) != "1":
        print(f"tests.system: installing {' '.join(names)}", file=sys.stderr, flush=True)
        if _install(names) and not missing():
            return 0
        names = [p.name for p in missing()]
    print(
        f"make test needs these Debian packages: {' '.join(names)} "
        f"(as root: apt-get install {' '.join(names)})",
        file=sys.stderr,
    )
    return 1


def require(*commands: str) -> None:
    """In a test: fail at once, in one line naming the package, if a tool is missing."""
    import pytest

    by_shows = {p.shows: p for p in load()}
    absent = [by_shows[c] for c in commands if not by_shows[c].installed()]
    if absent:
        names = " ".join(p.name for p in absent)
        pytest.fail(
            f"missing {', '.join(p.shows for p in absent)}: install the Debian package(s) "
            f"{names} (as root: apt-get install {names}, or `make test` does it)",
            pytrace=False,
        )


def main(argv: list[str]) -> int:
    if argv == ["ensure"]:
        return ensure()
    if argv == ["check"]:
        absent = missing()
        if absent:
            print(f"missing Debian packages: {' '.join(p.name for p in absent)}", file=sys.stderr)
        return 1 if absent else 0
    if argv == ["list"]:
        print(" ".join(p.name for p in load()))
        return 0
    print("usage: python3 -m tests.system ensure|check|list", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
