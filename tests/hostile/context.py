"""A :class:`probe.context.RunContext` for measuring loopback servers in the hostile suite.

Loopback is a special-purpose range; the suite plays a public site on it, so ``127.0.0.0/8`` is
declared public (as the lab declares 198.18.0.0/15): the probe then applies to the servers every
rule it applies to a real public site.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

from probe.config import Config
from probe.context import RunContext
from probe.stages import tls

LOOPBACK_PUBLIC = (ipaddress.ip_network("127.0.0.0/8"),)


def run_context(
    config: Config,
    *,
    udp_resolver: str | None = None,
    ca_file: Path | None = None,
    loopback_public: bool = True,
    report_id: str = "20240101T000000Z_webconnectivity_ZZ_0_n0_AAAAAAAAAAAAAAAA",
) -> RunContext:
    if loopback_public and not config.public_ranges:
        config = replace(config, public_ranges=LOOPBACK_PUBLIC)
    if ca_file is not None:
        config = replace(config, ca_file=ca_file)
    return RunContext(
        config=config,
        ssl_context=tls.make_ssl_context(ca_file=ca_file),
        diag_ssl_context=tls.make_ssl_context(verify=False),
        control_ssl_context=tls.make_ssl_context(ca_file=ca_file),
        udp_resolver=udp_resolver,
        report_id=report_id,
        test_start_time="2024-01-01 00:00:00",
    )
