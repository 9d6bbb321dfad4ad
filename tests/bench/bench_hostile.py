"""`make bench`: the hostile suite's worst case per target, and what the privacy step costs.

    .venv/bin/python -m tests.bench.bench_hostile [--quick]

1. Every server of the hostile zoo (``tests/hostile/zoo.py``: endless and compressed bodies,
   slowloris, giant headers, odd TLS chains, the redirect zoo) runs on loopback in this
   process; ``probe run --input URL`` measures each in its own process, with the probe's
   default timeouts (``--quick``: 2 s), as a volunteer who consented (``tests/volunteer.py``:
   ``probe onboard --yes --no-upload`` in a home of the benchmark's own). For each: wall time
   and peak RSS of that process (``wait4``), next to the same figures for an ordinary page;
   then the worst peak RSS and the longest wall time over the suite.
2. The privacy step (``probe.privacy``, run on every measurement): milliseconds per
   measurement for the lab's sample measurements and for pages of 100 KB and 512 KB (text,
   and gzip-encoded, which is decoded before it is checked).

Nothing is asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import base64
import copy
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from pydoc_data import topics as pydoc_topics
from typing import Any

import trio

from tests import volunteer
from tests.hostile.zoo import CASES, REDIRECTS, Case, RedirectCase, router, serving, url_of
from tests.unit.servers import Certs, TCPServer, tcp_server

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "results" / "samples" / "lab-demo.jsonl"


#: runs ``probe`` and writes the process's own peak RSS (VmHWM, KiB) to argv[1] at exit: a
#: fork's rusage would also count the memory of this (larger) benchmark process before exec
_REPORT_PEAK = """
import atexit, sys
from pathlib import Path
def _peak():
    status = Path("/proc/self/status").read_text().splitlines()
    Path(sys.argv[1]).write_text(next(l for l in status if l.startswith("VmHWM")).split()[1])
atexit.register(_peak)
from probe.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _probe(
    url: str, out: Path, ca_file: str, quick: bool, env: dict[str, str]
) -> tuple[float, int, int]:
    """(wall seconds, peak RSS KiB, exit status) of one ``probe run`` (called in a thread)."""
    peak = out.with_suffix(".peak")
    argv = [sys.executable, "-c", _REPORT_PEAK, str(peak), "run", "--input", url,
            "--output", str(out), "--no-control", "--no-geolocate",
            "--public-ranges", "127.0.0.0/8", "--ca-file", ca_file, "--no-progress"]  # fmt: skip
    if quick:
        argv += ["--timeout-http", "2", "--timeout-tls", "2", "--timeout-connect", "2"]
    started = time.perf_counter()
    status = subprocess.run(
        argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode
    wall = time.perf_counter() - started
    return wall, int(peak.read_text()) if peak.exists() else 0, status


async def _zoo_case(
    case: Case, certs: Certs, tmp: Path, quick: bool, env: dict[str, str]
) -> tuple[float, int, int]:
    async with serving(case, certs) as server:
        out = tmp / f"{case.name}.jsonl"
        return await trio.to_thread.run_sync(
            _probe, url_of(case, server), out, str(certs.ca_file), quick, env
        )


async def _redirect_case(
    case: RedirectCase, certs: Certs, tmp: Path, quick: bool, env: dict[str, str]
) -> tuple[float, int, int]:
    holder: dict[str, TCPServer] = {}

    async def handler(stream: trio.abc.Stream) -> None:
        await router(case.routes)(holder["server"])(stream)

    async with tcp_server(handler) as server:
        holder["server"] = server
        url = f"http://{server.address}/"
        return await trio.to_thread.run_sync(
            _probe, url, tmp / f"redirect-{case.name}.jsonl", str(certs.ca_file), quick, env
        )


async def hostile(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        certs = Certs(tmp)
        env = {**os.environ, **volunteer.home(tmp / "volunteer")}  # consent given, uploads off
        normal = Case("ordinary-page", "an ordinary page, for comparison")
        rows: list[tuple[str, float, int, int]] = []
        normal_wall, normal_rss, status = await _zoo_case(normal, certs, tmp, quick, env)
        print(f"{'case':28} {'wall s':>7} {'peak RSS MiB':>13} exit", flush=True)
        print(f"{normal.name:28} {normal_wall:7.2f} {normal_rss / 1024:13.1f} {status}")
        for case in CASES:
            wall, rss, status = await _zoo_case(case, certs, tmp, quick, env)
            rows.append((case.name, wall, rss, status))
            print(f"{case.name:28} {wall:7.2f} {rss / 1024:13.1f} {status}", flush=True)
        for redirect in REDIRECTS:
            wall, rss, status = await _redirect_case(redirect, certs, tmp, quick, env)
            rows.append((f"redirect-{redirect.name}", wall, rss, status))
            print(f"{'redirect-' + redirect.name:28} {wall:7.2f} {rss / 1024:13.1f} {status}")
        worst_rss = max(rows, key=lambda r: r[2])
        longest = max(rows, key=lambda r: r[1])
        print(
            f"hostile suite ({len(rows)} targets): worst peak RSS {worst_rss[2] / 1024:.1f} MiB "
            f"({worst_rss[0]}; an ordinary page {normal_rss / 1024:.1f} MiB), "
            f"longest wall {longest[1]:.1f} s per target ({longest[0]}; an ordinary page "
            f"{normal_wall:.2f} s)"
        )


# --- the privacy step ---------------------------------------------------------------------------


def privacy_cost() -> None:
    from probe.privacy import local_addresses, scrub_measurement

    ips = (*local_addresses(), "203.0.113.77")
    samples = [json.loads(line) for line in SAMPLES.read_text().splitlines()]
    text = Path(pydoc_topics.__file__).read_text(encoding="utf-8")
    dense = "".join(
        f"<div class='c-{i % 97}' data-id='{i * 7919:08x}'>Item {i}: 2024-05-{i % 28 + 1:02d} "
        f"12:{i % 60:02d}:05 price {i * 3 % 1000}.99 &amp; more at /p/{i}?q=a%20b</div>\n"
        for i in range(8000)
    )
    pages = {"text": text, "dense": dense}

    def with_body(kind: str, size: int, *, encoded: bool = False) -> dict[str, Any]:
        msmt = copy.deepcopy(samples[0])
        response = msmt["test_keys"]["requests"][0]["response"]
        text = pages[kind][:size]
        if encoded:
            data = gzip.compress(text.encode())
            response["body"] = {"format": "base64", "data": base64.b64encode(data).decode()}
            response["headers_list"].append(["Content-Encoding", "gzip"])
        else:
            response["body"] = text
        return msmt

    cases = {
        f"lab sample measurements (mean of {len(samples)})": samples,
        "100 KB text page": [with_body("text", 100_000)],
        "512 KB text page": [with_body("text", 512 << 10)],
        "512 KB text page, gzip (decoded first)": [with_body("text", 512 << 10, encoded=True)],
        "100 KB dense page (a date, time, id / 40 B)": [with_body("dense", 100_000)],
        "512 KB dense page": [with_body("dense", 512 << 10)],
    }
    scrub_measurement(samples[0], probe_ips=ips)  # the forms are compiled once per run
    print(f"privacy step per measurement ({len(ips)} addresses of this host):")
    for name, msmts in cases.items():
        best = min(
            timeit.repeat(
                lambda m=msmts: [scrub_measurement(x, probe_ips=ips) for x in m],
                number=3,
                repeat=5,
            )
        )
        print(f"  {name:40} {best / 3 / len(msmts) * 1e3:7.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_hostile")
    parser.add_argument("--quick", action="store_true", help="2 s timeouts (a smoke run)")
    args = parser.parse_args(argv)
    privacy_cost()
    trio.run(hostile, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
