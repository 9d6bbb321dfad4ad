"""Nothing lost, ever: ``probe run`` killed with SIGKILL at random moments, a disk that fills
mid-run, ``/dev/full`` and a torn last line, each with real subprocesses and a real filesystem.

After every kind of interruption, ``--resume`` on the same file ends with every target exactly
once, every line a valid measurement, and one report (one ``report_id``) in the file. The runs
are a volunteer's who consented (``volunteer_env``: ``probe onboard --yes --no-upload``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from probe.writer import TORN_SUFFIX
from tests.hostile.disk import grow, small_disk
from tests.unit.servers import TCPServer, http_server, response

PROBE = [sys.executable, "-m", "probe", "run"]
#: measure loopback servers as a public site, with nothing sent anywhere else
QUIET = ["--no-control", "--no-geolocate", "--public-ranges", "127.0.0.0/8", "--no-progress"]
PAGE = b"<html><head><title>t</title></head><body>" + b"x" * 3000 + b"</body></html>"


@asynccontextmanager
async def _site(delay: float = 0.15) -> AsyncIterator[TCPServer]:
    async with http_server([delay, response(PAGE, headers=["Content-Type: text/html"])]) as web:
        yield web


def _targets(tmp_path: Path, web: TCPServer, n: int) -> tuple[Path, list[str]]:
    urls = [f"http://{web.address}/page/{i}" for i in range(n)]
    listing = tmp_path / "targets.txt"
    listing.write_text("".join(u + "\n" for u in urls))
    return listing, urls


def _env(volunteer: dict[str, str]) -> dict[str, str]:
    return {**volunteer, "PYTHONUNBUFFERED": "1"}


async def _run(args: Sequence[str], volunteer: dict[str, str]) -> tuple[int, str]:
    proc = await trio.run_process(
        [*PROBE, *args, *QUIET],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=_env(volunteer),
    )
    return proc.returncode, proc.stderr.decode()


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _error_lines(stderr: str) -> list[str]:
    """The run's error: one line, the last one, and no traceback anywhere."""
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr
    assert stderr.strip().splitlines()[-1] == errors[0]
    return errors


def _check_file(out: Path, urls: list[str]) -> list[dict[str, object]]:
    """Every line valid, every target exactly once, one report."""
    data = out.read_bytes()
    assert data.endswith(b"\n")
    rows = [json.loads(line) for line in data.splitlines()]
    counts = Counter(str(r["input"]) for r in rows)
    assert counts == Counter(urls), counts - Counter(urls)
    assert len({r["report_id"] for r in rows}) == 1
    assert len({r["test_start_time"] for r in rows}) == 1
    return rows


async def test_kill_9_at_random_moments_then_resume(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    out = tmp_path / "out.jsonl"
    async with _site(delay=0.1) as web:
        listing, urls = _targets(tmp_path, web, 120)
        kills = 0
        planted = b""
        for attempt in range(25):
            argv = [*PROBE, "--list", str(listing), "--resume", str(out), *QUIET,
                    "--concurrency", "4"]  # fmt: skip
            if attempt == 2 and out.exists() and out.stat().st_size:
                planted = b'{"input": "http://torn.example/", "test_keys": {"requ'
                with out.open("ab") as fh:  # as if killed in the middle of a write
                    fh.write(planted)
            proc = await trio.lowlevel.open_process(
                argv, env=_env(volunteer_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            # kill once a random number of new lines is written, a random instant later
            start = _lines(out)
            wanted = start + rng.randint(1, 25)
            killed = False
            with trio.move_on_after(60):
                while proc.poll() is None:
                    if _lines(out) >= wanted:
                        await trio.sleep(rng.uniform(0, 0.05))
                        proc.send_signal(signal.SIGKILL)
                        killed = True
                        break
                    await trio.sleep(0.01)
            await proc.wait()
            if killed and proc.returncode == -signal.SIGKILL:
                kills += 1
                continue
            assert proc.returncode == 0, f"seed {seed}: exit {proc.returncode}"
            break
        else:
            pytest.fail(f"seed {seed}: the run never finished")
    assert kills >= 2, f"seed {seed}: killed {kills} times (the machine is fast: more targets)"
    rows = _check_file(out, urls)
    assert all(r["test_keys"]["requests"][0]["response"]["code"] == 200 for r in rows)  # type: ignore[index]
    if planted:
        side = out.with_name(out.name + TORN_SUFFIX)
        assert planted + b"\n" in side.read_bytes()


async def test_full_disk_mid_run_stops_with_one_line_then_resumes(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    with small_disk(tmp_path / "small", "48k") as mnt:
        out = mnt / "out.jsonl"
        async with _site(delay=0.0) as web:
            listing, urls = _targets(tmp_path, web, 12)
            code, err = await _run(["--list", str(listing), "--output", str(out),
                                    "--concurrency", "2"], volunteer_env)  # fmt: skip
            assert code == 1, err
            lines = _error_lines(err)
            assert "No space left on device" in lines[0]
            safe = out.read_bytes().count(b"\n")
            assert f"{safe} measurement" in lines[0] and f"--resume {out}" in lines[0]
            assert 0 < safe < len(urls)
            assert out.read_bytes().endswith(b"\n")
            for line in out.read_bytes().splitlines():
                json.loads(line)
            grow(mnt, "2m")
            code, err = await _run(["--list", str(listing), "--resume", str(out)], volunteer_env)
            assert code == 0, err
        _check_file(out, urls)


async def test_dev_full_is_one_line_not_a_traceback(volunteer_env: dict[str, str]) -> None:
    async with _site(delay=0.0) as web:
        code, err = await _run(
            ["--input", f"http://{web.address}/", "--output", "/dev/full"], volunteer_env
        )
    assert code == 1
    assert _error_lines(err) == [
        "probe run: error: cannot write to /dev/full: No space left on device; 0 measurements "
        "are safe in /dev/full (it ends on a whole line); free some space, then run the same "
        "command with --resume /dev/full to measure the rest"
    ]


async def test_resume_repairs_a_torn_line_and_continues_the_report(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    out = tmp_path / "out.jsonl"
    async with _site(delay=0.0) as web:
        listing, urls = _targets(tmp_path, web, 5)
        first = tmp_path / "first.txt"
        first.write_text("".join(u + "\n" for u in urls[:3]))
        code, err = await _run(["--list", str(first), "--output", str(out)], volunteer_env)
        assert code == 0, err
        report = json.loads(out.read_text().splitlines()[0])["report_id"]
        # a crash in the middle of the next line
        last = out.read_bytes().splitlines()[-1]
        out.write_bytes(out.read_bytes()[: -len(last) - 1] + last[:100])
        code, err = await _run(["--list", str(listing), "--resume", str(out)], volunteer_env)
        assert code == 0, err
        assert "moved a cut-off last line (100 bytes)" in err
    rows = _check_file(out, urls)
    assert {r["report_id"] for r in rows} == {report}
    assert out.with_name("out.jsonl" + TORN_SUFFIX).read_bytes() == last[:100] + b"\n"


async def test_resume_refuses_a_report_from_another_network(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    out = tmp_path / "out.jsonl"
    async with _site(delay=0.0) as web:
        url = f"http://{web.address}/"
        code, err = await _run(
            ["--input", url, "--output", str(out), "--probe-cc", "RU"], volunteer_env
        )
        assert code == 0, err
        code, err = await _run(
            ["--input", url + "2", "--resume", str(out), "--probe-cc", "IR"], volunteer_env
        )
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("probe run: error: --resume")
    assert "probe_cc RU" in err and len(out.read_text().splitlines()) == 1
