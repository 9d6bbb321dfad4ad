"""Uploads, durably: the outbox and the sender against real collectors on 127.0.0.1 (ours, and
another one that follows the spec to the letter), through real HTTP CONNECT and SOCKS5 proxies,
a blockpage instead of the collector, `probe upload` killed with `kill -9` mid-drain."""

from __future__ import annotations

import math
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from probe import configfile, consent
from probe.upload.client import CollectorClient
from probe.upload.live import live_upload
from probe.upload.outbox import Outbox
from probe.upload.policy import UploadPolicy, backoff_delay, policy_from_config
from probe.upload.sender import Sender, with_report_id
from tests.proxies import running_proxy
from tests.unit.collectors import line, measurements, ooni, read_store_lines, running_collector
from tests.unit.servers import Certs, closed_port, http_server, response
from tests.unit.spec_collector import running_spec_collector

PROBE = [sys.executable, "-m", "probe"]
FAST = UploadPolicy(base_delay=0.01, max_delay=0.05, max_failures=3, request_timeout=10)


def _outbox(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as outbox:
        outbox.add(lines)
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }


def _agree(tmp_path: Path, collector: str | None, **upload: Any) -> Path:
    path = tmp_path / "config" / "censorprobe" / "config.toml"
    consent.record(consent.Publishing(collector_url=collector), method="--yes", path=path)
    if upload:
        configfile.update(path, {"upload": upload})
    return path


async def _drain(path: Path, url: str, **kw: Any) -> Any:
    policy = kw.pop("policy", FAST)
    async with CollectorClient(url, policy=policy, **kw) as client:
        return await Sender(path, client, policy=policy, rng=random.Random(0)).drain()


@given(
    failures=st.integers(1, 200),
    jitter=st.floats(0, 1),
    retry_after=st.none() | st.floats(0, 10_000),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_exponential_jittered_and_bounded(
    failures: int, jitter: float, retry_after: float | None, seed: int
) -> None:
    policy = UploadPolicy(base_delay=1.0, max_delay=300.0, jitter=jitter)
    delay = backoff_delay(failures, policy=policy, rng=random.Random(seed), retry_after=retry_after)
    ceiling = min(300.0, 2.0 ** (failures - 1))
    assert 0 <= delay <= 300.0
    if retry_after is None or retry_after <= ceiling * (1 - jitter):
        assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9
    else:
        assert delay >= min(retry_after, 300.0) - 1e-9


def test_policy_overrides_from_the_config_file() -> None:
    policy = policy_from_config({"upload": {"request_timeout": 120, "max_failures": 2}})
    assert policy.request_timeout == 120.0 and policy.max_failures == 2
    for bad in (
        {"max_failures": 1.5},
        {"base_delay": -1},
        {"nope": 1},
        {"parallel": True},
        {"connect_timeout": math.nan},
        {"request_timeout": math.inf},
        {"connect_timeout": 0},
        {"jitter": 2.0},
        {"parallel": 0},
        {"max_delay": 1e400},
    ):
        with pytest.raises(ValueError):
            policy_from_config({"upload": bad})


async def test_the_exact_bytes_arrive_once(tmp_path: Path) -> None:
    msmts = measurements(30)
    lines = [line(m) for m in msmts]
    path = _outbox(tmp_path, lines)
    with Outbox(path) as outbox:
        assert outbox.add(lines) == 0  # the same lines again: nothing new
    async with running_collector(tmp_path / "store") as running:
        result = await _drain(path, running.urls[0])
        assert (result.uploaded, result.waiting, result.rejected) == (30, 0, 0)
        assert running.app.accepted == 30
        await running.roller.roll_now()
    stored = {m["input"]: m for m in read_store_lines(tmp_path / "store")}
    for raw in lines:
        local = orjson.loads(raw)
        mine = stored[local["input"]]
        uid = mine.pop("measurement_uid")
        assert orjson.dumps(mine) + b"\n" == raw  # byte for byte, own report id kept
        assert uid.split("_")[1:3] == ["ZZ", "webconnectivity"]
    with Outbox(path) as outbox:
        status = outbox.status()
    assert (status.waiting, status.uploaded) == (0, 30)


async def test_a_spec_collector_with_its_own_report_ids(tmp_path: Path) -> None:
    msmts = measurements(5, base=ooni()) + measurements(5, tag="x")
    path = _outbox(tmp_path, [line(m) for m in msmts])
    async with running_spec_collector() as (url, spec):
        result = await _drain(path, url)
    assert (result.uploaded, result.waiting) == (10, 0)
    assert len(spec.received) == 2 and spec.open == set() and len(spec.closed) == 2
    got = {m["input"]: m for contents in spec.received.values() for m in contents}
    for msmt in msmts:
        sent = got[msmt["input"]]
        assert sent["report_id"] != msmt["report_id"] and sent["report_id"].startswith("spec-")
        assert {**sent, "report_id": msmt["report_id"]} == msmt  # nothing else changed


def test_report_id_rewrite_changes_only_the_report_id() -> None:
    raw = line(ooni())
    old = orjson.loads(raw)["report_id"]
    assert with_report_id(raw, old, old) is raw
    new = orjson.loads(with_report_id(raw, old, "R"))
    assert new == {**orjson.loads(raw), "report_id": "R"}


async def test_unreachable_then_probe_upload_sends_what_waits(tmp_path: Path) -> None:
    env = _env(tmp_path)
    port = closed_port()
    config = _agree(tmp_path, f"http://127.0.0.1:{port}/", base_delay=0.01, max_failures=3)
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"".join(line(m) for m in measurements(20)) + b'{"torn": ')
    proc = await trio.run_process(
        [*PROBE, "upload", str(results)],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert b"added 20 measurements" in proc.stderr
    assert b"waiting 20 (last error: connection_refused)" in proc.stdout
    async with running_collector(tmp_path / "store") as running:
        proc = await trio.run_process(
            [*PROBE, "upload", "--collector", running.urls[0], "--config", str(config)],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert b"uploaded 20, waiting 0" in proc.stdout
        assert running.app.accepted == 20
    status = await trio.run_process(
        [*PROBE, "upload", "--status"], env=env, capture_stdout=True, check=True
    )
    assert b"waiting 0, uploaded 20, rejected 0" in status.stdout


async def test_blockpage_instead_of_the_collector_acknowledges_nothing(tmp_path: Path) -> None:
    path = _outbox(tmp_path, [line(m) for m in measurements(3)])
    page = response(b"<html>This site is blocked</html>", headers=["Content-Type: text/html"])
    async with http_server([page]) as server:
        result = await _drain(path, f"http://{server.address}/")
    assert result.gave_up and result.uploaded == 0 and result.waiting == 3
    assert result.last_error == "not_a_collector_answer"


async def test_refused_measurements_are_kept_apart(tmp_path: Path) -> None:
    good = measurements(3)
    bad = measurements(1, tag="bad")[0]
    bad["test_keys"]["queries"][0]["t0"] = "soon"  # our collector validates our own fully
    path = _outbox(tmp_path, [line(m) for m in [*good, bad]])
    async with running_collector(tmp_path / "store") as running:
        result = await _drain(path, running.urls[0])
    assert (result.uploaded, result.rejected, result.waiting) == (3, 1, 0)
    with Outbox(path) as outbox:
        ((raw, error),) = outbox.rejected_lines()
        assert outbox.status().rejected == 1
    assert orjson.loads(raw)["input"] == bad["input"] and error.startswith("http_400")


async def test_a_measurement_over_the_collectors_cap_is_refused_not_retried(
    tmp_path: Path,
) -> None:
    path = _outbox(tmp_path, [line(m) for m in measurements(2)])  # ~7.7 KiB each
    async with running_collector(tmp_path / "store", "--max-body", "4096") as running:
        result = await _drain(path, running.urls[0])
        assert running.app.accepted == 0
    assert (result.uploaded, result.rejected, result.waiting) == (0, 2, 0)
    assert result.last_error is not None and result.last_error.startswith("http_413")


async def test_http_connect_and_socks5_proxies(tmp_path: Path) -> None:
    certs = Certs(tmp_path)
    leaf = certs.ca.issue_cert("localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    store = tmp_path / "store"
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    async with running_collector(store, *tls) as running:
        port = int(running.urls[0].rsplit(":", 1)[1])
        collector = f"https://localhost:{port}/"
        async with running_proxy("http") as http_proxy, running_proxy("socks5") as socks:
            for proxy, tag in ((http_proxy, "h"), (socks, "s")):
                path = _outbox(tmp_path / tag, [line(m) for m in measurements(4, tag=tag)])
                result = await _drain(path, collector, proxy=proxy.url, ca_file=certs.ca_file)
                assert (result.uploaded, result.waiting) == (4, 0), result.last_error
        assert running.app.accepted == 8
    assert ("http", "localhost", port) in http_proxy.tunnels
    # socks5h: the collector's *name* went to the proxy (no local DNS, as with Tor)
    assert ("socks5h", "localhost", port) in socks.tunnels


# httpcore 1.0.9 (AsyncSOCKSProxy) drops, without closing it, the socket to a SOCKS proxy that
# refused the tunnel: CPython closes it at once when the object goes (so nothing leaks), but
# says so with a ResourceWarning. Only that warning is let through here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_proxy_refusing_the_collector_leaves_lines_waiting(tmp_path: Path) -> None:
    path = _outbox(tmp_path, [line(m) for m in measurements(2)])
    async with (
        running_collector(tmp_path / "store") as running,
        running_proxy("socks5", allow=()) as socks,
    ):
        result = await _drain(path, running.urls[0], proxy=socks.url)
    assert result.gave_up and result.waiting == 2 and socks.tunnels == []
    assert socks.refused


async def test_kill_9_of_the_uploader_loses_and_doubles_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    msmts = measurements(400)
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"".join(line(m) for m in msmts))
    rng = random.Random(7)
    async with running_collector(tmp_path / "store") as running:
        config = _agree(tmp_path, running.urls[0], parallel=8, ack_batch=16)
        args = [*PROBE, "upload", "--config", str(config), "--no-progress"]
        kills = 0
        for _ in range(4):
            async with trio.open_nursery() as nursery:
                proc = await nursery.start(
                    lambda task_status: trio.run_process(
                        [*args, str(results)],
                        env=env,
                        check=False,
                        task_status=task_status,
                        stdout=trio.lowlevel.FdStream(os.open(os.devnull, os.O_WRONLY)),
                    )
                )
                start = running.app.accepted + running.app.duplicates
                while running.app.accepted + running.app.duplicates < start + 40:
                    if proc.poll() is not None:
                        break
                    await trio.sleep(0.005)
                await trio.sleep(rng.random() * 0.05)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
        assert kills >= 3
        assert running.app.accepted < len(msmts)  # the kills interrupted it
        final = await trio.run_process(args, env=env, capture_stdout=True, check=False)
        assert final.returncode == 0, final.stdout
        assert running.app.accepted == len(msmts)
        await running.roller.roll_now()
    inputs = [m["input"] for m in read_store_lines(tmp_path / "store")]
    assert sorted(inputs) == sorted(m["input"] for m in msmts)  # each once, none missing
    with Outbox(tmp_path / "data" / "censorprobe" / "outbox.sqlite3") as outbox:
        status = outbox.status()
    assert (status.waiting, status.uploaded, status.rejected) == (0, len(msmts), 0)


async def test_live_upload_sends_each_line_as_it_is_added(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with running_collector(tmp_path / "store") as running:
        publishing = consent.Publishing(collector_url=running.urls[0] + "/")
        async with live_upload(publishing, outbox_path=path, policy=FAST) as upload:
            assert upload is not None
            for msmt in measurements(10):
                await upload.add(line(msmt))
                await trio.sleep(0.01)
            with trio.fail_after(10):
                while running.app.accepted < 10:
                    await trio.sleep(0.01)
        assert upload.summary("r.jsonl") == "uploaded 10, waiting 0"
    off = consent.Publishing(upload=False, collector_url="http://127.0.0.1:9/")
    async with live_upload(off, outbox_path=path) as nothing:
        assert nothing is None


async def test_upload_needs_consent_and_a_collector(tmp_path: Path) -> None:
    env = _env(tmp_path)
    proc = await trio.run_process([*PROBE, "upload"], env=env, capture_stderr=True, check=False)
    assert proc.returncode == 2 and b"consent missing: run `probe onboard`" in proc.stderr
    _agree(tmp_path, None)
    proc = await trio.run_process([*PROBE, "upload"], env=env, capture_stderr=True, check=False)
    assert proc.returncode == 2 and b"no collector" in proc.stderr


@given(
    st.binary(max_size=400)
    | st.builds(
        lambda d: orjson.dumps(d),
        st.dictionaries(
            st.sampled_from(
                [
                    "report_id",
                    "probe_cc",
                    "probe_asn",
                    "software_name",
                    "test_name",
                    "software_version",
                    "test_start_time",
                    "test_version",
                    "x",
                ]
            ),
            st.none() | st.text(max_size=8) | st.integers(-(2**63), 2**63 - 1),
        ),
    )
)
def test_outbox_template_reader_is_total(raw: bytes) -> None:
    from probe.upload.outbox import NotAMeasurement, template_of

    try:
        report_id, template = template_of(raw)
    except NotAMeasurement:
        return
    assert isinstance(report_id, str) and template["format"] == "json"


def test_probe_upload_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    import pexpect

    from tests.unit.collectors import collector_process

    env = _env(tmp_path)
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"".join(line(m) for m in measurements(30)))
    with collector_process(str(tmp_path / "store")) as collector:
        _agree(tmp_path, collector.url)
        child = pexpect.spawn(
            PROBE[0],
            [*PROBE[1:], "upload", str(results)],
            env=env,
            encoding="utf-8",
            timeout=60,
            dimensions=(24, 100),
        )
        child.expect_exact("added 30 measurements")
        child.expect_exact("probe upload: uploaded 30, waiting 0")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert collector.stop() == 0
