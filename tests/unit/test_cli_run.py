"""`probe run` end to end as a volunteer runs it: a subprocess against real loopback servers.

Also the promise on bad input: one-line reasons, exit 2, no traceback, nothing measured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.conformance.check import check_with_oonidata
from tests.unit.servers import Certs, http_server, response

PROBE = [sys.executable, "-m", "probe"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROBE, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--list", "/nonexistent/list.txt"], "cannot read target list"),
        (["--input", "http://a.test/", "--output", "/proc/nope/x.jsonl"], "cannot write output"),
        (["--input", "http://a.test/", "--concurrency", "0"], "--concurrency"),
        (["--input", "http://a.test/", "--resolver", "not-an-ip"], "--resolver"),
        (["--input", "http://a.test/", "--ca-file", "/etc/hostname"], "CA file"),
        (["--input", "http://a.test/", "--probe-cc", "RUS"], "--probe-cc"),
        (["--input", "http://a.test/", "--public-ranges", "198.18.0.0/99"], "--public-ranges"),
        (["--input", "http://a.test/", "--timeout-http", "-1"], "--timeout-http"),
        (["--input", "http://a.test/", "--control", "ftp://x"], "--control"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_options_fail_before_measuring(
    tmp_path: Path, args: list[str], needle: str, volunteer_env: dict[str, str]
) -> None:
    out = tmp_path / "out.jsonl"
    extra = [] if "--output" in args or args == ["--no-such-option"] else ["--output", str(out)]
    proc = _run("run", *args, *extra, env=volunteer_env)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() or out.read_text() == ""


def test_help_lists_every_subcommand() -> None:
    proc = _run("--help", env=dict(os.environ))
    assert proc.returncode == 0
    names = ("onboard", "run", "upload", "analyze", "report", "helper", "collector", "geoip")
    for name in (*names, "fingerprints", "schema"):
        assert f"\n    {name}" in proc.stdout


async def test_run_against_loopback_servers(tmp_path: Path, volunteer_env: dict[str, str]) -> None:
    """A real run: list with a bad line, an http and an https target, a redirect, a reset."""
    certs = Certs(tmp_path)
    page = b"<html><head><title>Loopback page</title></head><body>hello</body></html>"
    async with (
        http_server([response(page, headers=["Content-Type: text/html"])]) as plain,
        http_server([response(page)], ssl_context=certs.server_context("127.0.0.1")) as tls_srv,
        http_server(
            [response(b"", status="302 Found", headers=[f"Location: http://{plain.address}/x"])]
        ) as redirect,
        http_server(["reset"]) as resetting,
    ):
        targets = tmp_path / "list.txt"
        targets.write_text(
            f"http://{plain.address}/  NEWS\n"
            "gopher://bad.test/\n"
            f"https://{tls_srv.address}/\n"
            f"http://{redirect.address}/\n"
            f"http://{resetting.address}/\n",
            encoding="utf-8",
        )
        out = tmp_path / "out.jsonl"
        proc = await trio.run_process(
            [
                *PROBE,
                "run",
                "--list",
                str(targets),
                "--output",
                str(out),
                "--no-control",
                "--no-geolocate",
                "--ca-file",
                str(certs.ca_file),
                "--resolver",
                "127.0.0.1:9",
                "--timeout-dns",
                "1",
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=volunteer_env,
        )
    stderr = proc.stderr.decode()
    stdout = proc.stdout.decode()
    assert proc.returncode == 0, stderr
    assert f"{targets}:2: unsupported scheme" in stderr
    assert stderr.count("geolocation off: only interface addresses are scrubbed") == 1
    assert "skipped 1 invalid input lines" in stdout
    assert str(out) in stdout
    rows = {m["input"]: m for m in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 4
    ok = rows[f"http://{plain.address}/"]["test_keys"]
    assert ok["requests"][0]["response"]["code"] == 200
    assert ok["requests"][0]["response"]["body"] == page.decode()
    assert ok["tcp_connect"][0]["status"]["success"] is True
    tls_keys = rows[f"https://{tls_srv.address}/"]["test_keys"]
    assert tls_keys["tls_handshakes"][0]["failure"] is None
    assert tls_keys["tls_handshakes"][0]["peer_certificates"]
    assert tls_keys["accessible"] is True and tls_keys["blocking"] is False
    chain = rows[f"http://{redirect.address}/"]["test_keys"]["requests"]
    assert [r["response"]["code"] for r in chain] == [200, 302]  # newest first
    assert chain[0]["request"]["url"] == f"http://{plain.address}/x"
    assert "depth=1" in chain[0]["tags"] and "depth=0" in chain[1]["tags"]
    reset_keys = rows[f"http://{resetting.address}/"]["test_keys"]
    assert reset_keys["requests"][0]["failure"] == "connection_reset"
    # the diagnostic retry with an innocuous Host went to the same address
    diag = [r for r in reset_keys["requests"] if "x_diag=host_retry" in r["tags"]]
    assert diag and diag[0]["address"] == resetting.address
    # OONI's own parser reads every line the probe wrote, strictly (no silent type coercion)
    assert check_with_oonidata(out.read_text().splitlines()) == []
    for m in rows.values():
        assert m["probe_ip"] == "127.0.0.1"
        assert m["test_name"] == "web_connectivity"
        assert m["report_id"] == rows[f"http://{plain.address}/"]["report_id"]


async def test_ctrl_c_keeps_whole_lines_and_resume_finishes(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    page = response(b"<title>slow</title>")
    async with http_server([2.0, page]) as slow:
        urls = [f"http://{slow.address}/{i}" for i in range(6)]
        out = tmp_path / "out.jsonl"
        cmd = [
            *PROBE,
            "run",
            "--output",
            str(out),
            "--no-control",
            "--no-geolocate",
            "--concurrency",
            "2",
            "--resolver",
            "127.0.0.1:9",
            "--no-progress",
        ]
        for u in urls:
            cmd += ["--input", u]
        env = volunteer_env
        async with trio.open_nursery() as nursery:
            proc = await nursery.start(
                lambda task_status=trio.TASK_STATUS_IGNORED: trio.run_process(
                    cmd,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env=env,
                    task_status=task_status,
                )
            )
            with trio.fail_after(30):
                while len(slow.requests) < 2:  # two targets in flight
                    await trio.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        assert proc.returncode == 130
        lines = out.read_text().splitlines()
        assert 1 <= len(lines) < len(urls)
        done = {json.loads(x)["input"] for x in lines}  # every line is whole JSON
        resume = await trio.run_process(
            [
                *PROBE,
                "run",
                "--resume",
                str(out),
                "--no-control",
                "--no-geolocate",
                "--concurrency",
                "3",
                "--resolver",
                "127.0.0.1:9",
                *[a for u in urls for a in ("--input", u)],
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
        assert resume.returncode == 0, resume.stderr.decode()
    final = [json.loads(x)["input"] for x in out.read_text().splitlines()]
    assert sorted(final) == sorted(urls)  # no duplicates, nothing missing
    assert done <= set(final)
