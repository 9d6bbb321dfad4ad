"""Recorded processes: every daemon the lab starts gets a pid file, and only those are stopped.

A pid file holds "<pid> <start time in clock ticks>" so that a recycled pid is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def start(
    name: str, argv: list[str], *, netns: str, state: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``argv`` inside ``netns`` in its own session; record and return its pid."""
    logs, pids = state / "logs", state / "pids"
    logs.mkdir(parents=True, exist_ok=True)
    pids.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.out", "ab") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    # `ip netns exec` execs the command in place, so this pid is the daemon itself.
    ticks = None
    for _ in range(50):
        ticks = _start_ticks(proc.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    (pids / f"{name}.pid").write_text(f"{proc.pid} {ticks}\n")
    # The Popen object is dropped on purpose: the daemon outlives this process. Mark it as
    # reaped-by-someone-else so no ResourceWarning is raised.
    proc.returncode = 0
    return proc.pid


def recorded(state: Path) -> dict[str, tuple[int, int | None]]:
    """name -> (pid, start ticks) for every pid file under ``state``."""
    out: dict[str, tuple[int, int | None]] = {}
    for path in sorted((state / "pids").glob("*.pid")):
        fields = path.read_text().split()
        if fields:
            ticks = int(fields[1]) if len(fields) > 1 and fields[1] != "None" else None
            out[path.stem] = (int(fields[0]), ticks)
    return out


def alive(pid: int, ticks: int | None) -> bool:
    current = _start_ticks(pid)
    if current is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and (ticks is None or current == ticks)


def stop_all(state: Path, *, timeout: float = 5.0) -> list[str]:
    """SIGTERM every recorded live process (its group), then SIGKILL; remove the pid files."""
    stopped: list[str] = []
    entries = recorded(state)
    for name, (pid, ticks) in entries.items():
        if alive(pid, ticks):
            _signal(pid, signal.SIGTERM)
            stopped.append(name)
    deadline = time.monotonic() + timeout
    for pid, ticks in entries.values():
        _wait_or_kill(pid, ticks, deadline)
    for name in entries:
        (state / "pids" / f"{name}.pid").unlink(missing_ok=True)
    return stopped


def stop_one(state: Path, name: str, *, timeout: float = 5.0) -> bool:
    entry = recorded(state).get(name)
    if entry is None:
        return False
    pid, ticks = entry
    if alive(pid, ticks):
        _signal(pid, signal.SIGTERM)
        _wait_or_kill(pid, ticks, time.monotonic() + timeout)
    (state / "pids" / f"{name}.pid").unlink(missing_ok=True)
    return True


def _wait_or_kill(pid: int, ticks: int | None, deadline: float) -> None:
    """After SIGTERM: wait for ``pid`` to go until ``deadline``, then SIGKILL it; reap it."""
    while alive(pid, ticks) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.02)
    if alive(pid, ticks):
        _signal(pid, signal.SIGKILL)
    _reap(pid)


def _signal(pid: int, sig: signal.Signals) -> None:
    # Each daemon leads its own session/group (start_new_session), so the group is ours alone:
    # nginx workers and other children go with their master.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
