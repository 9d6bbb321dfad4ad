"""Session fixtures shared by tests/lab/conftest.py and tests/integration/conftest.py.

One lab per pytest session: if a complete lab is already up (``make lab-up``) it is reused and
left up; otherwise the session brings it up and tears it down at the end, even after failures.
Without root/namespaces the tests skip with the printed reason, except under CI=true, where they
fail loudly instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest

from tests import system
from tests.lab import lab as labmod
from tests.lab import model as m

RunIn = Callable[..., subprocess.CompletedProcess[str]]


def unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if sys.platform != "linux":
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, iptables, tc): run as root or in CI"
    missing = [
        t
        for t in ("ip", "iptables-restore", "tc", "nginx", "unbound", "dnsmasq", "ss")
        if shutil.which(t) is None
    ]
    packages = [p.name for p in system.missing(root=True)]
    if missing or packages:
        return (
            f"the lab needs these Debian packages: {' '.join(packages) or 'iproute2'} "
            f"(as root: apt-get install them, or `make test` does it)"
        )
    return None


@pytest.fixture(scope="session")
def lab() -> Iterator[dict[str, Any]]:
    """The running lab's facts (``python -m tests.lab env`` plus setup_seconds)."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the censorship lab cannot run: {reason}", pytrace=False)
        print(f"SKIP lab: {reason}", file=sys.stderr)
        pytest.skip(reason)
    with _machine_lock():
        yield from _lab_session()


#: the lab's namespaces have fixed names: one lab per machine, so one pytest session (of any
#: checkout) holds it at a time; others wait here instead of tearing it down under it
LOCK_PATH = os.environ.get("CP_LAB_LOCK", "/tmp/censorprobe-lab.lock")


class _machine_lock:
    """flock on LOCK_PATH; re-entrant within one process (tests/lab and tests/integration each
    instantiate the session fixture, and the second must not wait for the first)."""

    _depth = 0  # how many holders in this process
    _fh: IO[str] | None = None

    def __enter__(self) -> None:
        cls = type(self)
        if cls._depth == 0:
            fh = open(LOCK_PATH, "w")  # noqa: SIM115 - held for the whole session
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(
                    f"waiting for the lab lock {LOCK_PATH} (another session uses the lab)",
                    file=sys.stderr,
                )
                fcntl.flock(fh, fcntl.LOCK_EX)
            cls._fh = fh
        cls._depth += 1

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        cls._depth -= 1
        if cls._depth == 0 and cls._fh is not None:
            fcntl.flock(cls._fh, fcntl.LOCK_UN)
            cls._fh.close()
            cls._fh = None


def _lab_session() -> Iterator[dict[str, Any]]:
    state = m.state_dir()
    reuse = labmod.status(state)["up"]
    if reuse:
        info: dict[str, Any] = json.loads((state / "lab.json").read_text())
    else:
        try:
            info = labmod.up(state)
        except labmod.LabError as exc:
            pytest.fail(f"lab-up failed: {exc}", pytrace=False)
    try:
        yield info
    finally:
        if not reuse:
            labmod.down(state)


def _runner(netns: str) -> RunIn:
    def run(
        *argv: str, timeout: float = 60.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(m.REPO)}
        return subprocess.run(
            ["ip", "netns", "exec", netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env=env,
        )

    return run


@pytest.fixture(scope="session")
def run_in_client(lab: dict[str, Any]) -> RunIn:
    """``run_in_client("curl", "-s", url)`` runs inside cp-client (the volunteer)."""
    return _runner(m.NS_CLIENT)


@pytest.fixture(scope="session")
def run_in_inet(lab: dict[str, Any]) -> RunIn:
    """Runs inside cp-inet (the uncensored control vantage)."""
    return _runner(m.NS_INET)


def wire(run: RunIn, *args: str, timeout: float = 60.0) -> dict[str, Any]:
    """Run one ``tests.lab.wire`` check through ``run`` and return its JSON result."""
    result = run(sys.executable, "-m", "tests.lab.wire", *args, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"wire {args} failed: {result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout)
    return out
