"""The volunteer in cp-client runs `probe run` with the collector in cp-inet (issue 14, "Done
when"): every measurement arrives once, as written; with the collector blocked by the lab's
censor and a proxy on the uncensored side (HTTP CONNECT, SOCKS5 with the name resolved on the
far side, as with Tor), they arrive through the proxy; with no way through, they wait and
arrive on the next run. Then `probe analyze` on the collector's store gives the dataset of the
volunteer's own files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from probe.cli import main
from probe.configfile import update
from tests.lab import collector as labcollector
from tests.lab import model as m
from tests.lab.collector import LabVolunteer
from tests.lab.fixtures import RunIn
from tests.unit.collectors import read_store_lines, stored_as_written, table

pytestmark = pytest.mark.lab

#: tcp connect from cp-client: exit 0 when it connects, 1 when it times out
CONNECT = (
    "import socket,sys\n"
    "try:\n"
    "    socket.create_connection(({host!r}, {port}), timeout=2).close()\n"
    "except TimeoutError:\n"
    "    sys.exit(1)\n"
)


def test_a_volunteer_run_reaches_the_collector_through_censorship(
    lab: dict[str, Any], run_in_client: RunIn, tmp_path: Path
) -> None:
    state = m.state_dir()
    shutil.rmtree(labcollector.collector_store(state), ignore_errors=True)
    urls = labcollector.QUICK_URLS
    who = LabVolunteer(lab, tmp_path / "volunteer")
    blocked_url = labcollector.BLOCKED_COLLECTOR_URL

    def measure(name: str, targets: tuple[str, ...]) -> str:
        said = who.run(name, targets).stdout
        assert len(who.written[name]) == len(targets), said
        return said

    labcollector.collector_start(state)
    labcollector.proxy_start(state)
    try:
        # the lab's censor drops the collector's second port; the first one is open
        for port, expected in ((m.COLLECTOR_BLOCKED_PORT, 1), (m.COLLECTOR_PORT, 0)):
            probe = CONNECT.format(host=m.CONTROL_ADDR, port=port)
            done = run_in_client(sys.executable, "-c", probe)
            assert done.returncode == expected, (port, done.stderr, "lab older than the rule?")

        who.choose("--collector", labcollector.COLLECTOR_URL)
        # short upload timeouts (the volunteer's [upload] table): a blocked collector drops SYNs
        update(who.config, {"upload": {"connect_timeout": 2.0, "request_timeout": 5.0}})
        said = measure("direct", urls[0:4])
        assert "upload: uploaded 4, waiting 0" in said, said

        who.choose("--collector", blocked_url, "--proxy", "")  # no way through
        said = measure("blocked", urls[4:7])
        assert "upload: uploaded 0, waiting 3" in said, said
        assert "generic_timeout_error" in said, said

        # the next run goes through the HTTP CONNECT proxy: the 3 that waited and its own 2
        who.choose("--collector", blocked_url, "--proxy", labcollector.HTTP_PROXY_URL)
        said = measure("http-proxy", urls[7:9])
        assert "upload: uploaded 5, waiting 0" in said, said

        who.choose("--collector", blocked_url, "--proxy", labcollector.SOCKS_PROXY_URL)
        said = measure("socks-proxy", urls[9:12])
        assert "upload: uploaded 3, waiting 0" in said, said

        log = labcollector.proxy_log(state)
        port = m.COLLECTOR_BLOCKED_PORT
        assert f"tunnel http {m.CONTROL_NAME} {port}" in log, log
        assert f"tunnel socks5h {m.CONTROL_NAME} {port}" in log, log  # named, resolved there
    finally:
        labcollector.stop(state)  # graceful: the journal is rolled into parts

    store = labcollector.collector_store(state)
    assert len(who.lines()) == len(urls)
    stored_as_written(read_store_lines(store), who.lines())  # each once, the bytes written

    # the researcher's view: the collector's store gives the volunteer's dataset
    ranges = ["--workers", "0", "--public-ranges", ",".join(lab["public_ranges"])]
    files = [str(who.results(name)) for name in who.written]
    assert main(["analyze", *files, "--output", str(tmp_path / "local"), *ranges]) == 0
    assert main(["analyze", str(store), "--output", str(tmp_path / "store"), *ranges]) == 0
    for name in ("measurements", "observations"):
        assert table(tmp_path / "store", name) == table(tmp_path / "local", name), name
