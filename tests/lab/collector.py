"""The volunteer-to-researcher path in the lab: a collector and an upload proxy in ``cp-inet``.

Both run beside the control vantage, on its address (``control.lab.test``, 198.19.0.100) and
its TLS certificate, on ports of their own: nothing in the lab's topology changes.

* :func:`collector_start`: ``probe collector serve`` on https://control.lab.test:8443/ and on
  :8444, the port the lab's censor drops (``model.COLLECTOR_BLOCKED_PORT``, one rule in
  ``configs.iptables_isp``): a volunteer configured with :data:`BLOCKED_COLLECTOR_URL` finds the
  collector blocked, the proxy reaches it. Its store is under the lab's state folder
  (``collector-store/``); no rate limit (one volunteer runs many);
* :func:`proxy_start`: ``python -m tests.proxies`` with an HTTP CONNECT proxy on :3128 and a
  SOCKS5 proxy on :1080, allowed to reach the lab's ranges only; it logs one line per tunnel
  (``logs/upload-proxy.out``) so a test can tell the uploads went through it.

Both are recorded processes (:mod:`tests.lab.procs`): ``lab down`` stops them with the rest.
:data:`QUICK_URLS` are scenario URLs whose verdict comes fast (no blackhole to wait out), for
the runs that exercise the upload rather than the verdicts.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests import volunteer
from tests.lab import demo, procs
from tests.lab import lab as labmod
from tests.lab import model as m

_VENV_PROBE = m.REPO / ".venv" / "bin" / "probe"
PROBE = str(_VENV_PROBE) if _VENV_PROBE.exists() else "probe"

COLLECTOR_PORT = m.COLLECTOR_PORT
HTTP_PROXY_PORT = 3128
SOCKS_PROXY_PORT = 1080
COLLECTOR_URL = f"https://{m.CONTROL_NAME}:{COLLECTOR_PORT}/"
BLOCKED_COLLECTOR_URL = f"https://{m.CONTROL_NAME}:{m.COLLECTOR_BLOCKED_PORT}/"
QUICK_URLS = (
    "http://ok.lab.test/",
    "https://ok.lab.test/",
    "http://nxdomain.lab.test/",
    "http://dns-blockpage.lab.test/",
    "https://tcp-rst.lab.test/",
    "https://icmp-host.lab.test/",
    "https://sni-rst.lab.test/",
    "http://host-rst.lab.test/",
    "http://tproxy-blockpage.lab.test/",
    "http://redirect-blockpage.lab.test/",
    "https://status503.lab.test/",
    "https://down-refused.lab.test/",
)
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
    argv = [
        PROBE,
        "collector",
        "serve",
        "--listen",
        f"{m.CONTROL_ADDR}:{COLLECTOR_PORT}",
        "--listen",
        f"{m.CONTROL_ADDR}:{m.COLLECTOR_BLOCKED_PORT}",
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
    _wait("collector", state, [COLLECTOR_PORT, m.COLLECTOR_BLOCKED_PORT], timeout)
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


class LabVolunteer:
    """A volunteer in cp-client with a home of their own (config file and outbox under
    ``root``), who gives consent and chooses as a scripting volunteer does (``probe onboard
    --yes``) and runs ``probe run`` with the lab's facts; the lines each run wrote are kept."""

    def __init__(self, info: dict[str, Any], root: Path) -> None:
        self.info = info
        self.root = root
        self.config = root / "config" / "censorprobe" / "config.toml"
        self.written: dict[str, list[bytes]] = {}
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
        }

    def choose(self, *choices: str) -> str:
        """``probe onboard --yes CHOICES``; what it printed (the recorded choices)."""
        volunteer.agree(self.config, *choices)
        return labmod.sh(PROBE, "onboard", "--show", "--config", str(self.config)).stdout

    def results(self, name: str) -> Path:
        return self.root / f"{name}.jsonl"

    def run(self, name: str, urls: list[str] | tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        """``probe run`` over ``urls`` in cp-client into ``results(name)``; fails loudly."""
        argv = demo.probe_argv(self.info, self.results(name), list(urls), config=self.config)
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=300, env=self.env, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"probe run ({name}) failed: {proc.stdout}{proc.stderr[-3000:]}")
        self.written[name] = self.results(name).read_bytes().splitlines(keepends=True)
        return proc

    def lines(self) -> list[bytes]:
        return [line for lines in self.written.values() for line in lines]
