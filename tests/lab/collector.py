"""The volunteer-to-researcher path in the lab: a collector and an upload proxy in ``cp-inet``.

Both run beside the control vantage, on its address (``control.lab.test``, 198.19.0.100) and
its TLS certificate, on ports of their own: nothing in the lab's topology changes.

* :func:`collector_start`: ``probe collector serve`` on https://control.lab.test:8443/, its store
  under the lab's state folder (``collector-store/``), no rate limit (one volunteer runs many);
* :func:`proxy_start`: ``python -m tests.proxies`` with an HTTP CONNECT proxy on :3128 and a
  SOCKS5 proxy on :1080, allowed to reach the lab's ranges only; it logs one line per tunnel
  (``logs/upload-proxy.out``) so a test can tell the uploads went through it.

Both are recorded processes (:mod:`tests.lab.procs`): ``lab down`` stops them with the rest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.lab import lab as labmod
from tests.lab import model as m
from tests.lab import procs

COLLECTOR_PORT = 8443
HTTP_PROXY_PORT = 3128
SOCKS_PROXY_PORT = 1080
COLLECTOR_URL = f"https://{m.CONTROL_NAME}:{COLLECTOR_PORT}/"
HTTP_PROXY_URL = f"http://{m.CONTROL_ADDR}:{HTTP_PROXY_PORT}"
SOCKS_PROXY_URL = f"socks5h://{m.CONTROL_ADDR}:{SOCKS_PROXY_PORT}"


def _wait(name: str, state: Path, ports: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(labmod._accepts(m.NS_INET, m.CONTROL_ADDR, p) for p in ports):
        pid, ticks = procs.recorded(state)[name]
        if not procs.alive(pid, ticks) or time.monotonic() > deadline:
            procs.stop_one(state, name)
            log = (state / "logs" / f"{name}.out").read_text(errors="replace")[-2000:]
            raise labmod.LabError(f"{name} does not accept on {ports}:\n{log}")
        time.sleep(0.1)


def collector_store(state: Path | None = None) -> Path:
    return (state or m.state_dir()) / "collector-store"


def collector_start(state: Path | None = None, *, timeout: float = 20.0) -> int:
    """Start the lab's collector in cp-inet (recorded as ``collector``); wait until it listens."""
    state = state or m.state_dir()
    procs.stop_one(state, "collector")
    probe = m.REPO / ".venv" / "bin" / "probe"
    argv = [
        str(probe) if probe.exists() else "probe",
        "collector",
        "serve",
        "--listen",
        f"{m.CONTROL_ADDR}:{COLLECTOR_PORT}",
        "--store",
        str(collector_store(state)),
        "--tls-cert",
        str(state / "pki" / f"{m.CONTROL_NAME}.pem"),
        "--tls-key",
        str(state / "pki" / f"{m.CONTROL_NAME}.key"),
        "--rate-limit",
        "0",
        "--roll-interval",
        "2",
    ]
    pid = procs.start("collector", argv, netns=m.NS_INET, state=state)
    _wait("collector", state, [COLLECTOR_PORT], timeout)
    return pid


def proxy_start(state: Path | None = None, *, timeout: float = 20.0) -> int:
    """Start the upload proxies in cp-inet (recorded as ``upload-proxy``)."""
    state = state or m.state_dir()
    procs.stop_one(state, "upload-proxy")
    argv = [
        labmod._python(),
        "-m",
        "tests.proxies",
        "--http",
        f"{m.CONTROL_ADDR}:{HTTP_PROXY_PORT}",
        "--socks",
        f"{m.CONTROL_ADDR}:{SOCKS_PROXY_PORT}",
        "--allow",
        ",".join(m.PUBLIC_RANGES),
    ]
    env = {**os.environ, "PYTHONPATH": str(m.REPO)}
    pid = procs.start("upload-proxy", argv, netns=m.NS_INET, state=state, env=env)
    _wait("upload-proxy", state, [HTTP_PROXY_PORT, SOCKS_PROXY_PORT], timeout)
    return pid


def proxy_log(state: Path | None = None) -> str:
    path = (state or m.state_dir()) / "logs" / "upload-proxy.out"
    return path.read_text(errors="replace") if path.exists() else ""


def stop(state: Path | None = None) -> None:
    """Stop both (the collector gracefully: SIGTERM rolls its journal into parts)."""
    state = state or m.state_dir()
    procs.stop_one(state, "upload-proxy")
    procs.stop_one(state, "collector", timeout=30.0)
