"""`make bench` for the packet-level test (issue 15), measured in the censorship lab (root).

    .venv/bin/python -m tests.bench.bench_packet [--rtt-ms 0,50]

For each round-trip time (the lab's LAB_DELAY_MS, half of it on each direction of the client
link), `probe packet` traces every ``[[packet_scenario]]`` of tests/lab/scenarios.toml from
cp-client, one command per scenario. Printed per scenario: the probes (TTL-limited connections
or queries, both traces), the packets sent (SYNs, ACKs, triggers, retransmissions, RSTs,
queries), the seconds the trace takes (the measurement's ``test_runtime``) and the command's
wall time (start-up included); then the mean per blocked target (a censor found) and per clean
or down target. Then the same web targets (the followed-up lab scenarios) through `probe run`
and `probe run --packet-level`: the wall time each run takes, and what the follow-ups add per
blocked target (the runs' difference over the targets followed up; the follow-ups run one at a
time). Nothing is asserted: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.lab import lab as labmod
from tests.lab import model as m
from tests.lab.demo import probe_argv
from tests.lab.demo_packet import FOLLOWED_HOPS, packet_argv, run_packet_level


def _one(info: dict[str, Any], scenario: m.PacketScenario, output: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        packet_argv(info, scenario, output), capture_output=True, text=True, timeout=300
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"probe packet failed: {proc.stderr[-2000:]}")
    msmt = json.loads(output.read_text(encoding="utf-8").splitlines()[0])
    tk = msmt["test_keys"]
    probes = sum(
        len(entry[role]["iterations"])
        for entry in tk["iterative_trace"]
        for role in ("control_trace", "target_trace")
    )
    censor = (tk.get("x_censors") or [{}])[0]
    return {
        "id": scenario.id,
        "status": censor.get("status"),
        "hop": censor.get("hop"),
        "probes": probes,
        "packets": tk["x_packets_sent"],
        "seconds": msmt["test_runtime"],
        "wall": wall,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("scenario", "censor", "probes", "packets", "trace s", "wall s")
    lines = [head]
    for r in rows:
        where = f"hop {r['hop']}" if r["status"] == "found" else str(r["status"])
        lines.append(
            (
                r["id"],
                where,
                str(r["probes"]),
                str(r["packets"]),
                f"{r['seconds']:.2f}",
                f"{r['wall']:.2f}",
            )
        )
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in lines)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows) if rows else 0.0


def _runs(info: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """`probe run` then `probe run --packet-level` over the followed-up web scenarios."""
    urls = list(FOLLOWED_HOPS)
    t0 = time.perf_counter()
    proc = subprocess.run(
        probe_argv(info, tmp / "plain.jsonl", urls), capture_output=True, text=True, timeout=600
    )
    plain = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"probe run failed: {proc.stderr[-2000:]}")
    t0 = time.perf_counter()
    run = run_packet_level(info, tmp / "packet.jsonl", urls)
    packet = time.perf_counter() - t0
    followed = sum(1 for msmt in run.web.values() if "x_packet" in msmt["test_keys"])
    packets = sum(t["test_keys"]["x_packets_sent"] or 0 for t in run.traces)
    return {"targets": len(urls), "followed": followed, "plain": plain, "packet": packet,
            "packets": packets}  # fmt: skip


def run(rtt_ms: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = m.state_dir()
    info = labmod.up(state, delay_ms=rtt_ms / 2)
    try:
        labmod.control_start(state)
        with tempfile.TemporaryDirectory() as tmp:
            rows = [_one(info, s, Path(tmp) / f"{s.id}.jsonl") for s in m.load_packet_scenarios()]
            return rows, _runs(info, Path(tmp))
    finally:
        labmod.down(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", default="0,50", help="round-trip times to add (ms, comma)")
    args = parser.parse_args(argv)
    from tests.lab.fixtures import unavailable

    reason = unavailable()
    if reason:
        print(f"packet bench skipped: {reason}")
        return 0
    for rtt in (float(x) for x in args.rtt_ms.split(",")):
        rows, runs = run(rtt)
        blocked = [r for r in rows if r["status"] == "found"]
        clean = [r for r in rows if r["status"] in ("none", "no-connection")]
        print(f"\n-- packet-level follow-up, lab path of 4 hops, +{rtt:g} ms round trip --")
        print(_table(rows))
        for label, group in (("blocked target", blocked), ("clean/down target", clean)):
            print(
                f"per {label} ({len(group)}): {_mean(group, 'packets'):.1f} packets sent, "
                f"{_mean(group, 'probes'):.1f} probes, {_mean(group, 'seconds'):.2f} s added "
                f"({_mean(group, 'wall'):.2f} s wall with start-up)"
            )
        added = (runs["packet"] - runs["plain"]) / max(runs["followed"], 1)
        print(
            f"probe run over {runs['targets']} blocked web targets: {runs['plain']:.1f} s; with "
            f"--packet-level {runs['packet']:.1f} s ({runs['followed']} followed up, "
            f"{runs['packets']} packets sent): +{added:.2f} s and "
            f"{runs['packets'] / max(runs['followed'], 1):.1f} packets per blocked target"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
