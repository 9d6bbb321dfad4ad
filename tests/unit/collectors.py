"""Helpers for the collector and upload tests: a real collector on 127.0.0.1, and measurements.

* :func:`running_collector`: ``probe collector serve`` built from its real options, in this
  process (hypercorn's trio worker on an ephemeral loopback port), local or S3 store.
* :func:`collector_process`: the same as a real subprocess (for ``kill -9``).
* :func:`measurements`: distinct, valid measurements: real ones (OONI's probes' and ours) with
  the input, start time and runtime varied, all in one report.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from probe.cli import build_parser
from probe.collector.service import Running, run_collector
from probe.collector.storage import LocalStore, ObjectStore
from probe.commands import collector as collector_command

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / ".." / "shared" / "data" / "ooni-samples"
OUR_SAMPLE = REPO / "results" / "samples" / "lab-demo.jsonl"
OONI_SAMPLE = SAMPLES / "probecli-lte-real-IT-accessible-nexa.json"

#: OONI's measurement_uid: <YYYYMMDDhhmmss.ffffff>_<CC>_<testname>_<16 hex>
UID_RE = re.compile(r"[0-9]{14}\.[0-9]{6}_[A-Z]{2}_[a-z0-9]+_[0-9a-f]{16}\Z")


def shared_data() -> Path:
    return SAMPLES.parent


def ours() -> dict[str, Any]:
    line = OUR_SAMPLE.read_text().splitlines()[0]
    value: dict[str, Any] = json.loads(line)
    return value


def ooni() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(OONI_SAMPLE.read_text())
    return value


def measurements(
    n: int, *, base: dict[str, Any] | None = None, report_id: str | None = None, tag: str = ""
) -> list[dict[str, Any]]:
    """``n`` distinct measurements derived from ``base`` (default: one of ours)."""
    template = base if base is not None else ours()
    out = []
    for i in range(n):
        msmt = copy.deepcopy(template)
        msmt["input"] = f"https://site-{tag}{i}.example.org/"
        msmt["test_runtime"] = 0.5 + i / 1000.0
        if report_id is not None:
            msmt["report_id"] = report_id
        out.append(msmt)
    return out


def line(msmt: dict[str, Any]) -> bytes:
    return orjson.dumps(msmt, option=orjson.OPT_APPEND_NEWLINE)


def template_of(msmt: dict[str, Any]) -> dict[str, Any]:
    """The open-report template of a measurement (as probe-cli's NewReportTemplate)."""
    return {
        "data_format_version": "0.2.0",
        "format": "json",
        "probe_asn": msmt["probe_asn"],
        "probe_cc": msmt["probe_cc"],
        "software_name": msmt["software_name"],
        "software_version": msmt["software_version"],
        "test_name": msmt["test_name"],
        "test_start_time": msmt["test_start_time"],
        "test_version": msmt["test_version"],
    }


def serve_args(store: str, *options: str) -> list[str]:
    return ["collector", "serve", "--listen", "127.0.0.1:0", "--store", store, "--quiet", *options]


@asynccontextmanager
async def running_collector(
    store: Path | str, *options: str, log: list[dict[str, Any]] | None = None
) -> AsyncIterator[Running]:
    """A collector in this process; yields its :class:`Running` (``urls[0]`` is the base URL)."""
    args = build_parser().parse_args(serve_args(str(store), *options))
    settings, config = collector_command.build(args)
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(
            partial(run_collector, settings, config, log=None if log is None else log.append)
        )
        yield running
        nursery.cancel_scope.cancel()


async def open_report(client: httpx.AsyncClient, base: str, msmt: dict[str, Any]) -> str:
    resp = await client.post(base + "/report", json=template_of(msmt))
    assert resp.status_code == 200, resp.text
    report_id: str = resp.json()["report_id"]
    return report_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CollectorProcess:
    """``probe collector serve`` as a subprocess on a fixed loopback port."""

    def __init__(self, store: str, port: int, *options: str, env: dict[str, str] | None = None):
        self.store = store
        self.port = port
        self.options = options
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"cp-collector-{port}.log"

    def start(self) -> None:
        args = serve_args(self.store, *self.options)
        args[args.index("127.0.0.1:0")] = f"127.0.0.1:{self.port}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "probe", *args],
                stdout=log,
                stderr=log,
                env={**os.environ, **(self.env or {})},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/", timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("collector did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM: the graceful stop (rolls the journal); the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@contextmanager
def collector_process(
    store: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(store, free_port(), *options, env=env)
    proc.start()
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()


#: columns that say where a row came from (file, line, uid), not what was measured
PROVENANCE = {"msmt_id", "source_file", "source_line", "measurement_uid", "obs_id"}


def table(root: Path, name: str, *, keep_provenance: bool = False) -> list[dict[str, Any]]:
    """A dataset's table (``probe analyze --output root``) as sorted rows, by default without
    the provenance columns (so a store's dataset and the local files' compare equal)."""
    import pyarrow.dataset as ds

    rows = ds.dataset(root / name, format="parquet", partitioning="hive").to_table().to_pylist()
    if not keep_provenance:
        rows = [{k: v for k, v in row.items() if k not in PROVENANCE} for row in rows]
    return sorted(rows, key=repr)


def read_store(store: ObjectStore) -> list[dict[str, Any]]:
    """Every measurement in a store's parts, in key order."""
    out = []
    for info in store.list("raw"):
        with store.open(info.key) as fh:
            data = gzip.decompress(fh.read())
        out += [orjson.loads(raw) for raw in data.splitlines() if raw.strip()]
    return out


def stored_as_written(stored: list[dict[str, Any]], lines: list[bytes]) -> None:
    """The collector filed each written line once, as its exact bytes (plus its uid)."""
    again = sorted(
        orjson.dumps({k: v for k, v in m.items() if k != "measurement_uid"}) + b"\n" for m in stored
    )
    assert again == sorted(lines)


def read_store_lines(root: Path) -> list[dict[str, Any]]:
    """Every measurement in a local store's parts, in key order."""
    return read_store(LocalStore(root))
