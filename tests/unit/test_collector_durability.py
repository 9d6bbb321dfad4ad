"""The collector killed with ``kill -9`` under load (a real subprocess, many concurrent uploaders):
no acknowledged measurement is lost, none is stored twice.

Uploaders keep submitting; each one that gets no answer (the collector died mid-request) sends
the same measurement again once the collector is back, as the outbox does. The collector rolls
its journal every few tenths of a second, so the kills land anywhere: in a commit, between a
commit and its answer, in a roll, between a roll's parts and its bookkeeping.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from probe.collector.storage import LocalStore, ObjectStore, S3Store
from probe.upload.client import CollectorClient, UploadError
from probe.upload.policy import UploadPolicy
from tests.unit.collectors import (
    CollectorProcess,
    free_port,
    line,
    measurements,
    read_store,
    template_of,
)
from tests.unit.s3server import S3Server, s3_server  # noqa: F401 (the s3 fixture)

#: bk-003's example measurement (mkcollector's dummy test): small, so the test is about the
#: collector's bookkeeping, not about moving bytes
DUMMY = {
    "annotations": {},
    "data_format_version": "0.2.0",
    "input": None,
    "measurement_start_time": "2018-11-01 15:33:20",
    "probe_asn": "AS30722",
    "probe_cc": "IT",
    "probe_ip": "127.0.0.1",
    "report_id": "",
    "software_name": "mkcollector",
    "software_version": "0.0.1",
    "test_helpers": {},
    "test_keys": {"client_resolver": "[scrubbed]"},
    "test_name": "dummy",
    "test_runtime": 5.05,
    "test_start_time": "2018-11-01 15:33:17",
    "test_version": "0.0.1",
}


async def _hammer(
    collector: CollectorProcess,
    msmts: list[dict[str, Any]],
    *,
    uploaders: int,
    kills: list[int],
    rng: random.Random,
) -> dict[str, str]:
    """Submit every measurement until acknowledged, killing and restarting the collector once
    the number of acknowledgements passes each of ``kills``; input -> acknowledged uid."""
    acked: dict[str, str] = {}
    retries = [0]
    todo = list(msmts)
    up = trio.Event()
    up.set()

    async def uploader(client: CollectorClient) -> None:
        while todo:
            msmt = todo.pop()
            while True:
                await up.wait()
                try:
                    uid = await client.submit(msmt["report_id"], line(msmt))
                except UploadError as exc:
                    assert exc.retryable, exc.message
                    retries[0] += 1
                    await trio.sleep(0.02)
                    continue
                assert acked.setdefault(msmt["input"], uid) == uid
                break

    async def killer() -> None:
        nonlocal up
        for threshold in kills:
            while len(acked) < threshold:
                await trio.sleep(0.005)
            await trio.sleep(rng.random() * 0.05)
            up = trio.Event()
            await trio.to_thread.run_sync(collector.kill)
            await trio.to_thread.run_sync(collector.start)
            up.set()

    policy = UploadPolicy(parallel=uploaders, request_timeout=10)
    async with CollectorClient(collector.url, policy=policy) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer)
            async with trio.open_nursery() as workers:
                for _ in range(uploaders):
                    workers.start_soon(uploader, client)
    assert retries[0] >= len(kills), "the kills did not hit requests in flight"
    return acked


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "seed"), [("local", 1), ("local", 2), ("s3", 3)])
async def test_kill_9_under_load_loses_nothing_acknowledged(
    tmp_path: Path, backend: str, seed: int, request: pytest.FixtureRequest
) -> None:
    options = ["--roll-interval", "0.2", "--roll-size", "65536", "--rate-limit", "0"]
    env = None
    if backend == "s3":
        s3: S3Server = request.getfixturevalue("s3")
        url = f"s3://{s3.bucket}/durability-{seed}"
        options += ["--s3-endpoint", s3.endpoint, "--journal", str(tmp_path / "journal.db")]
        env = s3.env
        store: ObjectStore = S3Store(s3.bucket, f"durability-{seed}", s3.settings())
    else:
        url = str(tmp_path / "store")
        store = LocalStore(tmp_path / "store")
    collector = CollectorProcess(url, free_port(), *options, env=env)
    collector.start()
    try:
        rid = httpx.post(
            collector.url + "/report", json=template_of(DUMMY), trust_env=False
        ).json()["report_id"]
        msmts = measurements(1500, base=DUMMY, report_id=rid)
        acked = await _hammer(
            collector, msmts, uploaders=64, kills=[150, 500, 900, 1300], rng=random.Random(seed)
        )
    finally:
        assert collector.stop() == 0  # graceful: rolls the rest of the journal
    assert len(acked) == len(msmts)
    stored = read_store(store)
    inputs = [m["input"] for m in stored]
    assert len(inputs) == len(set(inputs)), "a measurement was stored twice"
    assert {m["input"]: m["measurement_uid"] for m in stored} == acked
    log = collector.log.read_text()
    assert "Traceback" not in log, log[-3000:]
