"""A :class:`probe.context.RunContext` over a fake network, for orchestrator tests.

Addresses in these tests live in 198.18.0.0/15 (the lab's range, declared public as in the
lab), so that 10/8, 127/8, 169.254/16 ... stay what they are: private addresses the probe must
never contact for a public target.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from probe.config import Config, Timeouts
from probe.context import RunContext
from probe.net import Network
from probe.stages import tls

PUBLIC = (ipaddress.ip_network("198.18.0.0/15"),)
REPORT_ID = "20260101T000000Z_webconnectivity_ZZ_0_n1_AAAAAAAAAAAAAAAA"

#: every timeout distinct, so a test can tell which one fired from the virtual elapsed time
TIMEOUTS = Timeouts(
    dns=3.0,
    dns_listen_window=0.5,
    connect=4.0,
    tls=5.0,
    http=6.0,
    control=20.0,
    target=60.0,
)


def run_context(
    network: Network,
    *,
    ca_file: Path,
    timeouts: Timeouts = TIMEOUTS,
    control_url: str | None = None,
    udp_resolver: str | None = None,
    public: bool = True,
    **config: Any,
) -> RunContext:
    """The context of a run over ``network`` trusting the test CA in ``ca_file``."""
    settings = Config(
        timeouts=timeouts,
        ca_file=ca_file,
        control_url=control_url,
        resolver=udp_resolver,
        public_ranges=PUBLIC if public else (),
        **config,
    )
    verified = tls.make_ssl_context(ca_file=ca_file)
    return RunContext(
        config=settings,
        ssl_context=verified,
        diag_ssl_context=tls.make_ssl_context(verify=False),
        control_ssl_context=verified,
        udp_resolver=udp_resolver,
        report_id=REPORT_ID,
        test_start_time="2026-01-01 00:00:00",
        network=network,
    )
