"""The volunteer in cp-client uploads to the collector in cp-inet: directly, through the SOCKS5
proxy (the collector's name resolved on the far side, as with Tor) and through the HTTP CONNECT
proxy; every measurement arrives once. (The censor blocking the collector, and the upload inside
`probe run`, come with the second wave.)"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.lab import collector as labcollector
from tests.lab import model as m
from tests.lab.fixtures import RunIn
from tests.unit.collectors import line, measurements, read_store_lines

pytestmark = pytest.mark.lab

PROBE = str(m.REPO / ".venv" / "bin" / "probe") if (m.REPO / ".venv").exists() else "probe"


def test_uploads_from_the_censored_side(
    lab: dict[str, Any], run_in_client: RunIn, tmp_path: Path
) -> None:
    state = m.state_dir()
    shutil.rmtree(labcollector.collector_store(state), ignore_errors=True)
    os.chmod(tmp_path, 0o755)
    env = ["env", f"XDG_CONFIG_HOME={tmp_path / 'config'}", f"XDG_DATA_HOME={tmp_path / 'data'}"]
    labcollector.collector_start(state)
    labcollector.proxy_start(state)
    sent: list[str] = []
    try:
        agree = run_in_client(
            *env, PROBE, "onboard", "--yes", "--collector", labcollector.COLLECTOR_URL
        )
        assert agree.returncode == 0, agree.stderr
        for route, proxy in (
            ("direct", None),
            ("socks", labcollector.SOCKS_PROXY_URL),
            ("http", labcollector.HTTP_PROXY_URL),
        ):
            batch = measurements(3, tag=route)
            results = tmp_path / f"{route}.jsonl"
            results.write_bytes(b"".join(line(msmt) for msmt in batch))
            extra = ["--proxy", proxy] if proxy else []
            proc = run_in_client(
                *env,
                PROBE,
                "upload",
                str(results),
                "--ca-file",
                lab["ca_file"],
                *extra,
                timeout=120,
            )
            assert proc.returncode == 0, (route, proc.stdout, proc.stderr)
            assert "uploaded 3, waiting 0" in proc.stdout, (route, proc.stdout)
            sent += [msmt["input"] for msmt in batch]
        log = labcollector.proxy_log(state)
        name = m.CONTROL_NAME
        assert f"tunnel socks5h {name} {labcollector.COLLECTOR_PORT}" in log, log
        assert f"tunnel http {name} {labcollector.COLLECTOR_PORT}" in log, log
    finally:
        labcollector.stop(state)  # graceful: the journal is rolled into parts
    stored = [msmt["input"] for msmt in read_store_lines(labcollector.collector_store(state))]
    assert sorted(stored) == sorted(sent), sys.stderr
