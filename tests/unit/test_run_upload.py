"""`probe run` as a volunteer runs it, with the path to the collector wired in: the consent
gate, each written line uploaded (exactly those bytes) to a real collector on 127.0.0.1, the
summary's counts, `--no-upload`, no collector configured, a collector that is down (the lines
wait and the next run sends them), the `[publish]` choices as the run's privacy defaults, and a
full disk that stops the run (the upload line still printed; only lines in the file sent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import trio

from probe.upload.outbox import Outbox
from tests import volunteer
from tests.hostile.disk import small_disk
from tests.unit.collectors import (
    collector_process,
    read_store_lines,
    running_collector,
    stored_as_written,
)
from tests.unit.servers import http_server, response

PROBE = [sys.executable, "-m", "probe"]
PAGE = response(b"<html><title>up</title>hello</html>", headers=["Content-Type: text/html"])


async def probe(
    *args: str, env: dict[str, str], out: Path | None = None
) -> tuple[int, str, str, list[bytes]]:
    """``probe <args>`` (a ``run`` writes to ``out``): exit status, stdout, stderr, lines."""
    extra = ["--output", str(out)] if out is not None else []
    proc = await trio.run_process(
        [*PROBE, *args, *extra],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={k: v for k, v in env.items() if "proxy" not in k.lower()},
    )
    lines = out.read_bytes().splitlines(keepends=True) if out and out.exists() else []
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode(), lines


def run_args(*urls: str) -> list[str]:
    """A quick run over loopback targets: no control, no geolocation, no DNS."""
    args = ["run", "--no-control", "--no-geolocate", "--resolver", "127.0.0.1:9"]
    args += ["--timeout-dns", "1", "--no-progress", "--probe-asn", "AS64500", "--probe-cc", "IT"]
    for url in urls:
        args += ["--input", url]
    return args


def home(tmp_path: Path, *choices: str) -> dict[str, str]:
    return {**os.environ, **volunteer.home(tmp_path / "home", *choices)}


def outbox_status(env: dict[str, str]) -> tuple[int, int]:
    with Outbox(Path(env["XDG_DATA_HOME"]) / "censorprobe" / "outbox.sqlite3") as outbox:
        status = outbox.status()
    return status.waiting, status.uploaded


async def test_no_consent_no_measurement(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path)}
    out = tmp_path / "out.jsonl"
    code, stdout, stderr, lines = await probe(*run_args("http://a.test/"), env=env, out=out)
    assert code == 2 and stdout == "" and lines == [] and not out.exists()
    assert stderr.count("\n") == 1 and "consent missing: run `probe onboard`" in stderr
    assert "probe onboard --yes" in stderr  # the scripted way, named
    assert not (tmp_path / "censorprobe").exists()  # no outbox either


async def test_every_written_line_is_uploaded_once(tmp_path: Path) -> None:
    async with (
        http_server([PAGE]) as site,
        running_collector(tmp_path / "store") as collector,
    ):
        env = home(tmp_path, "--collector", collector.urls[0])
        urls = [f"http://{site.address}/{i}" for i in range(3)]
        out = tmp_path / "out.jsonl"
        code, stdout, stderr, lines = await probe(*run_args(*urls), env=env, out=out)
        assert code == 0, stderr
        assert "upload: uploaded 3, waiting 0" in stdout
        assert len(lines) == 3
        await collector.roller.roll_now()
    stored_as_written(read_store_lines(tmp_path / "store"), lines)
    assert outbox_status(env) == (0, 3)


async def test_no_upload_and_no_collector(tmp_path: Path) -> None:
    async with http_server([PAGE]) as site:
        url = f"http://{site.address}/"
        env = home(tmp_path, "--upload")  # the volunteer left the collector URL empty
        code, stdout, stderr, lines = await probe(
            *run_args(url, url + "2"), env=env, out=tmp_path / "a.jsonl"
        )
        assert code == 0, stderr
        said = (stdout + stderr).count("no collector configured")
        assert said == 1 and "2 measurements wait in the outbox" in stdout
        assert outbox_status(env) == (2, 0)
        # --no-upload: nothing more queued, and the summary says the measurements stay here
        code, stdout, stderr, _ = await probe(
            *run_args(url + "3"), "--no-upload", env=env, out=tmp_path / "b.jsonl"
        )
        assert code == 0, stderr
        assert "upload: off (measurements stay on this computer)" in stdout
        assert outbox_status(env) == (2, 0)
    # the volunteer sets a collector later: `probe upload` sends what waited
    async with running_collector(tmp_path / "store") as collector:
        code, stdout, stderr, _ = await probe(
            "upload", "--collector", collector.urls[0], "--no-progress", env=env
        )
        assert code == 0 and "uploaded 2, waiting 0" in stdout, stderr
        await collector.roller.roll_now()
    stored_as_written(read_store_lines(tmp_path / "store"), lines)


async def test_a_collector_that_is_down_gets_them_on_the_next_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    async with http_server([PAGE]) as site:
        url = f"http://{site.address}/"
        with collector_process(str(store)) as collector:
            collector.stop()  # its address is known, nobody answers there now
            env = home(tmp_path, "--collector", collector.url)
            first = await probe(*run_args(url, url + "1"), env=env, out=tmp_path / "1.jsonl")
            assert first[0] == 0, first[2]
            assert "upload: uploaded 0, waiting 2 (last error: connection_refused)" in first[1]
            collector.start()
            second = await probe(*run_args(url + "2"), env=env, out=tmp_path / "2.jsonl")
            assert second[0] == 0, second[2]
            assert "upload: uploaded 3, waiting 0" in second[1]
            assert collector.stop() == 0
    stored_as_written(read_store_lines(store), first[3] + second[3])


async def test_publishing_choices_are_the_run_defaults(tmp_path: Path) -> None:
    env = home(tmp_path, "--no-upload", "--no-include-asn", "--no-include-cc")
    async with http_server([PAGE]) as site:
        url = f"http://{site.address}/"
        chosen = await probe(*run_args(url), env=env, out=tmp_path / "a.jsonl")
        flag = await probe(*run_args(url), "--include-asn", env=env, out=tmp_path / "b.jsonl")
    assert chosen[0] == flag[0] == 0, chosen[2] + flag[2]
    (a,), (b,) = map(orjson.loads, chosen[3]), map(orjson.loads, flag[3])
    assert (a["probe_asn"], a["probe_cc"]) == ("AS0", "ZZ")  # as chosen in `probe onboard`
    assert (b["probe_asn"], b["probe_cc"]) == ("AS64500", "ZZ")  # the flag wins, for its key


async def test_an_unusable_outbox_stops_before_measuring(tmp_path: Path) -> None:
    env = home(tmp_path, "--upload")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env["XDG_DATA_HOME"] = str(blocker)
    out = tmp_path / "out.jsonl"
    code, stdout, stderr, lines = await probe(*run_args("http://a.test/"), env=env, out=out)
    assert code == 2 and lines == [] and stdout == ""
    assert stderr.count("\n") == 1 and "cannot open the upload outbox" in stderr
    assert "--no-upload" in stderr


async def test_a_full_disk_stops_the_run_and_the_upload_line_still_prints(tmp_path: Path) -> None:
    """A write error (a real tmpfs that fills up) stops the run with its one error line; the
    upload line is printed all the same, and what went out is exactly the whole lines in the
    file, never the one that could not be written."""
    big = response(b"<html><title>t</title>" + b"x" * 3000 + b"</html>")
    async with (
        http_server([big]) as site,
        running_collector(tmp_path / "store") as collector,
    ):
        env = home(tmp_path, "--collector", collector.urls[0])
        urls = [f"http://{site.address}/{i}" for i in range(16)]
        with small_disk(tmp_path / "small", "48k") as disk:
            code, stdout, stderr, lines = await probe(
                *run_args(*urls), "--concurrency", "2", env=env, out=disk / "out.jsonl"
            )
        assert code == 1, stderr
        errors = [x for x in stderr.splitlines() if "error" in x]
        assert len(errors) == 1 and errors[0] == stderr.strip().splitlines()[-1]
        assert "No space left on device" in errors[0]
        assert f"{len(lines)} measurements are safe" in errors[0]
        assert 0 < len(lines) < len(urls)
        assert f"upload: uploaded {len(lines)}, waiting 0" in stdout
        await collector.roller.roll_now()
    stored_as_written(read_store_lines(tmp_path / "store"), lines)
    assert outbox_status(env) == (0, len(lines))
