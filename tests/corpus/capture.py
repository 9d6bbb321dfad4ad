"""Capture the loopback goldens of the corpus: our probe against real scripted servers.

    .venv/bin/python -m tests.corpus.capture OUTDIR

Each case runs :func:`probe.experiment.measure_web` with no control against a scripted HTTP
server on a loopback address (tests/unit/servers.py) and writes the measurement as
``OUTDIR/<case>.json``. The servers accept the TCP connection and then misbehave the way real
servers do (issue 16, item 4); without a control, none of these is evidence of IP blocking.
The files in ``golden/`` were written by this script; ``manifest.toml`` records the script and
the case name as their origin. ``tests/unit/test_verdict_fixes.py`` runs the same cases live.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

import trio

from probe.config import Config, Timeouts
from probe.experiment import RunContext, measure_web
from probe.stages import tls
from tests.unit import servers as srv

#: a path long enough that some servers refuse the request line outright
LONG_PATH = "/search?q=" + "x" * 16000

#: case -> (server script, URL path); every server first reads the whole request
CASES: dict[str, tuple[list[srv.Step], str]] = {
    # an HTTP/0.9 answer: a body and no status line, then the server closes
    "http09": ([b"<html><body>an HTTP/0.9 answer, no status line</body></html>"], "/"),
    # a server that sends two bytes of its status line and then thinks for a long time
    "slow-server": ([b"HT", 30.0], "/"),
    # a server that resets a huge request without answering it
    "reset-huge-request": ([srv.RESET], LONG_PATH),
}


def context(*, http_timeout: float = 1.5) -> RunContext:
    """No control, short timeouts, loopback treated as public (the URLs are IP literals)."""
    config = Config(
        timeouts=Timeouts(dns=1.0, connect=1.0, tls=1.0, http=http_timeout, target=20.0),
        public_ranges=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    return RunContext(
        config=config,
        ssl_context=tls.make_ssl_context(),
        diag_ssl_context=tls.make_ssl_context(verify=False),
        control_ssl_context=tls.make_ssl_context(),
        udp_resolver=None,
        report_id="20261201T000000Z_webconnectivity_ZZ_0_n1_CorpusLoopbackGold",
        test_start_time="2026-12-01 00:00:00",
    )


async def capture(case: str, *, host: str = "127.0.0.7") -> dict[str, Any]:
    script, path = CASES[case]
    async with srv.http_server(script, host=host) as server:
        return await measure_web(f"http://{server.address}{path}", ctx=context())


async def _main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        measurement = await capture(case)
        (out / f"loopback-{case}.json").write_text(
            json.dumps(measurement, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )


if __name__ == "__main__":
    trio.run(_main, Path(sys.argv[1]))
