"""The control helper's worst case is bounded and stated: memory under 100 concurrent requests for
endless bodies stays under :meth:`ServerLimits.worst_case_memory` (a real ``probe helper serve``
process, its peak RSS read from /proc), and one client's burst is cut to the bucket's size (a
real served helper, real requests).

Issue 12: 100 concurrent requests for endless bodies took a lab helper to ~0.75 GB; 500 POSTs
from one client in 0.8 s all passed the default "600/min" limit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import trio

from probe.control.limits import ServerLimits
from tests.unit.servers import read_head, tcp_server
from tests.unit.test_control_server import running_helper

CHUNK = b"<p>" + b"x" * 65533


async def endless(stream: trio.abc.Stream) -> None:
    """A site whose body never ends (no Content-Length, no chunking: read until close)."""
    await read_head(stream)
    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    while True:
        await stream.send_all(CHUNK)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _peak_rss(pid: int) -> int:
    """VmHWM of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert proc.poll() is None, "the helper exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            await trio.sleep(0.05)
    raise AssertionError("the helper never listened")


async def test_memory_stays_under_the_stated_bound(tmp_path: Path) -> None:
    limits = ServerLimits(max_concurrency=16, body_cap=1 << 20)
    port = _free_port()
    log = tmp_path / "helper.err"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "probe", "helper", "serve", "--listen", f"127.0.0.1:{port}",
             "--lab-allow-ranges", "127.0.0.0/8", "--rate-limit", "0",
             "--max-concurrency", str(limits.max_concurrency), "--body-cap", str(limits.body_cap)],
            stderr=err,
            env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent"},
        )  # fmt: skip
    try:
        await _wait_listening(port, proc)
        async with tcp_server(endless) as site:
            request = {
                "http_request": f"http://{site.address}/",
                "http_request_headers": {},
                "tcp_connect": [],
            }
            codes: Counter[int] = Counter()
            lengths: list[int] = []
            async with httpx.AsyncClient(
                trust_env=False, timeout=120, limits=httpx.Limits(max_connections=200)
            ) as client:

                async def one() -> None:
                    reply = await client.post(f"http://127.0.0.1:{port}/", json=request)
                    codes[reply.status_code] += 1
                    if reply.status_code == 200:
                        lengths.append(reply.json()["http_request"]["body_length"])

                async with trio.open_nursery() as nursery:
                    for _ in range(100):
                        nursery.start_soon(one)
        peak = _peak_rss(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert set(codes) <= {200, 503} and codes[200] >= limits.max_concurrency, codes
    assert lengths and all(n == limits.body_cap for n in lengths)  # the cap held
    assert peak <= limits.worst_case_memory(), (peak >> 20, limits.worst_case_memory() >> 20)
    stated = log.read_text()
    assert f"worst case about {limits.worst_case_memory() >> 20} MiB" in stated


async def test_one_client_cannot_burst_past_the_bucket() -> None:
    limits = ServerLimits()  # the defaults: 600/min, burst 60
    async with running_helper() as (url, app, records):
        statuses: list[int] = []
        started = time.monotonic()
        async with httpx.AsyncClient(
            trust_env=False, timeout=30, limits=httpx.Limits(max_connections=50)
        ) as client:

            async def burst(n: int) -> None:
                for _ in range(n):
                    reply = await client.post(url, content=b"{}")
                    statuses.append(reply.status_code)

            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(burst, 10)
        elapsed = time.monotonic() - started
    counts = Counter(statuses)
    passed = len(statuses) - counts[429]
    assert len(statuses) == 500 and set(counts) <= {400, 429}, counts
    # the bucket's content, plus what refilled while the burst went on (one token in reserve
    # for the refill that may land between the first and the last request)
    allowed = limits.burst + limits.rate_per_minute / 60 * elapsed + 1
    assert limits.burst <= passed <= allowed, (passed, elapsed)
    assert json.dumps(records[-1]).count("429") or records[-1]["status"] in (400, 429)
