"""`make bench` for the collector and the outbox, on loopback (no lab needed).

    .venv/bin/python -m tests.bench.bench_collector [--n 3000] [--concurrent 100]
        [--drain 10000] [--no-s3]

1. ``probe collector serve`` (a subprocess, local store, no rate limit) takes ``--n``
   submissions of a real measurement of ours (~42 KB of JSON, distinct inputs) from 1 uploader,
   then from ``--concurrent`` uploaders at once (this process, trio + our upload client).
   Printed: measurements acknowledged per second, the collector's CPU per measurement (user+sys
   of its process from /proc, divided by the count) and its peak RSS (VmHWM). The uploaders are
   bare keep-alive HTTP/1.1 connections (h11): httpx's pool costs ~8 ms of CPU per request
   at 100 connections, more than the collector, and would measure itself.
2. The same with the store on S3 (SeaweedFS on 127.0.0.1): acknowledgements do not wait for
   S3 (the journal is local), so the figures show what the roller's uploads cost beside them;
   the final roll to S3 is timed on its own.
3. The outbox: ``--drain`` measurements queued, then drained to the collector (4 in flight,
   acknowledgements committed 64 at a time): seconds and measurements per second.
4. ``probe run`` itself over ``--run`` loopback targets, with ``--no-upload`` and with each
   written line queued and uploaded to the collector as it is written: the wall time and the
   probe's CPU per target, both ways (the price of the outbox's fsync'd commit per line and
   the sender beside the run), and whether every measurement arrived.

The load generator shares the machine's two cores with the collector: the 100-uploader figures
are a floor. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h11
import httpx
import trio

from probe.upload.client import CollectorClient, submission_body
from probe.upload.outbox import Outbox
from probe.upload.policy import UploadPolicy
from probe.upload.sender import Sender
from tests.unit.collectors import (
    CollectorProcess,
    free_port,
    line,
    measurements,
    template_of,
)
from tests.unit.s3server import S3Server, seaweedfs

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _peak_rss_kib(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1])
    return 0


@contextmanager
def _collector(
    store: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(store, free_port(), "--rate-limit", "0", *options, env=env)
    proc.start()
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


async def _uploader(host: str, port: int, report_id: str, todo: list[bytes]) -> None:
    """Keep-alive HTTP/1.1 connections submitting until ``todo`` is empty (h11, no pool: the
    load generator must cost far less than what it measures). A connection the server ends
    (hypercorn closes one after 1,000 requests) is replaced."""
    target = f"/report/{report_id}".encode()
    while todo:
        stream = await trio.open_tcp_stream(host, port)
        conn = h11.Connection(h11.CLIENT)
        async with stream:
            while todo and conn.our_state is h11.IDLE:
                body = submission_body(todo.pop())
                head = [
                    (b"host", host.encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                request = conn.send(h11.Request(method="POST", target=target, headers=head))
                data = conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
                await stream.send_all(request + data)
                status = 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(65536))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.EndOfMessage):
                        break
                if status != 200:
                    raise RuntimeError(f"collector answered {status}")
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()


async def _submit_all(url: str, lines: list[bytes], report_id: str, concurrent: int) -> float:
    todo = list(reversed(lines))
    host, port = url.removeprefix("http://").rsplit(":", 1)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrent):
            nursery.start_soon(_uploader, host, int(port), report_id, todo)
    return time.perf_counter() - started


def _load(collector: CollectorProcess, n: int, concurrent: int, tag: str) -> dict[str, Any]:
    """Submit ``n`` measurements from ``concurrent`` connections; the figures."""
    base = measurements(1)[0]
    report_id = httpx.post(
        collector.url + "/report", json=template_of(base), trust_env=False
    ).json()["report_id"]
    lines = [line(m) for m in measurements(n, base=base, report_id=report_id, tag=tag)]
    assert collector.proc is not None
    pid = collector.proc.pid
    cpu0 = _cpu_seconds(pid)
    own0 = time.process_time()
    wall = trio.run(_submit_all, collector.url, lines, report_id, concurrent)
    cpu = _cpu_seconds(pid) - cpu0
    own = time.process_time() - own0
    return {
        "n": n,
        "concurrent": concurrent,
        "rate": n / wall,
        "cpu_ms": 1000 * cpu / n,
        "wall": wall,
        "rss_mib": _peak_rss_kib(pid) / 1024,
        "bytes": sum(len(x) for x in lines) / n,
        "generator_ms": 1000 * own / n,
    }


def _print(label: str, fig: dict[str, Any]) -> None:
    print(
        f"  {label:<28} {fig['concurrent']:>3} uploaders: {fig['rate']:8,.0f} msmt/s, "
        f"collector CPU {fig['cpu_ms']:.2f} ms/msmt, peak RSS {fig['rss_mib']:.0f} MiB "
        f"({fig['n']} x {fig['bytes'] / 1024:.0f} KiB in {fig['wall']:.1f} s; the uploaders "
        f"took {fig['generator_ms']:.2f} ms/msmt)",
        flush=True,
    )


def collector_figures(args: argparse.Namespace, tmp: Path, s3: S3Server | None) -> None:
    print(f"collector on loopback, measurement of {len(line(measurements(1)[0])) // 1024} KiB")
    with _collector(str(tmp / "store")) as collector:
        _print("local store", _load(collector, max(args.n // 3, 100), 1, "a"))
        _print("local store", _load(collector, args.n, args.concurrent, "b"))
    if s3 is None:
        return
    url = f"s3://{s3.bucket}/bench-{int(time.time())}"
    options = (
        "--s3-endpoint",
        s3.endpoint,
        "--journal",
        str(tmp / "s3-journal.db"),
        "--roll-interval",
        "5",
    )
    with _collector(url, *options, env=s3.env) as collector:
        _print("S3 store (SeaweedFS)", _load(collector, max(args.n // 3, 100), 1, "c"))
        _print("S3 store (SeaweedFS)", _load(collector, args.n, args.concurrent, "d"))
        started = time.perf_counter()
        collector.stop()  # the graceful stop rolls what the journal still holds to S3
        print(f"  final roll to S3 and stop: {time.perf_counter() - started:.1f} s", flush=True)


def outbox_figures(args: argparse.Namespace, tmp: Path) -> None:
    path = tmp / "outbox.sqlite3"
    lines = [line(m) for m in measurements(args.drain, tag="o")]
    started = time.perf_counter()
    with Outbox(path) as outbox:
        for i in range(0, len(lines), 1000):
            outbox.add(lines[i : i + 1000])
    queued = time.perf_counter() - started
    with _collector(str(tmp / "drain-store")) as collector:
        policy = UploadPolicy()

        async def drain() -> Any:
            async with CollectorClient(collector.url, policy=policy) as client:
                return await Sender(path, client, policy=policy).drain()

        started = time.perf_counter()
        result = trio.run(drain)
        wall = time.perf_counter() - started
    print(
        f"outbox: {args.drain:,} measurements queued in {queued:.1f} s, drained in {wall:.1f} s "
        f"({result.uploaded / wall:,.0f} msmt/s, {policy.parallel} in flight, "
        f"acks committed {policy.ack_batch} at a time); waiting after: {result.waiting}",
        flush=True,
    )


def run_figures(args: argparse.Namespace, tmp: Path) -> None:
    """``probe run`` over loopback targets without and with uploads (a volunteer's home)."""
    from tests import volunteer
    from tests.unit.servers import http_server, response

    page = response(b"<html><title>bench</title>hello</html>", headers=["Content-Type: text/html"])
    with _collector(str(tmp / "run-store")) as collector:
        env = {**os.environ, **volunteer.home(tmp / "volunteer", "--collector", collector.url)}
        figures = {}

        async def measure(label: str, *extra: str) -> None:
            async with http_server([page]) as site:
                listing = tmp / "run-list.txt"
                listing.write_text("".join(f"http://{site.address}/{i}\n" for i in range(args.run)))
                argv = [sys.executable, "-m", "probe", "run", "--list", str(listing)]
                argv += ["--no-control", "--no-geolocate", "--resolver", "127.0.0.1:9"]
                argv += ["--no-progress", "--output", str(tmp / f"run-{label}.jsonl"), *extra]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                proc = await trio.run_process(
                    argv, env=env, capture_stdout=True, capture_stderr=True, check=True
                )
                wall = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            said = [x for x in proc.stdout.decode().splitlines() if x.startswith("upload:")]
            figures[label] = (wall, cpu, said[0] if said else "")

        trio.run(measure, "off", "--no-upload")
        trio.run(measure, "on")
    print(f"probe run over {args.run} loopback targets (no control, concurrency 20):")
    for label, (wall, cpu, said) in figures.items():
        print(
            f"  uploads {label:<3}  {wall:5.1f} s wall, probe CPU {1000 * cpu / args.run:5.2f} ms "
            f"per target  ({said})",
            flush=True,
        )
    (w_off, c_off, _), (w_on, c_on, _) = figures["off"], figures["on"]
    print(
        f"  uploading adds {1000 * (c_on - c_off) / args.run:.2f} ms CPU per target, "
        f"wall ratio {w_on / w_off:.2f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_collector")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--run", type=int, default=500, help="targets of the probe run figure")
    parser.add_argument("--no-s3", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cp-bench-collector-") as tmpdir:
        tmp = Path(tmpdir)
        if args.no_s3:
            collector_figures(args, tmp, None)
        else:
            with seaweedfs() as s3:
                collector_figures(args, tmp, s3)
        outbox_figures(args, tmp)
        run_figures(args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
