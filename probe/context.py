"""What every measurement of a run shares: :class:`RunContext`, built once by the session.

A test's measure function gets its input and this context, nothing else: the configuration,
the TLS contexts, the network it may use (:class:`~probe.net.Network`, the fake one in tests),
the report id and the annotations. It is frozen; per-target state lives in the test's own flow
object. Kept apart from the tests and from the envelope so that neither imports the other.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from probe.config import Config
from probe.net import TRIO, Network
from probe.runfacts import RunFacts


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything a measurement needs besides its input; built once per run."""

    config: Config
    ssl_context: ssl.SSLContext
    #: verification off: only for the innocuous-SNI diagnostic handshake
    diag_ssl_context: ssl.SSLContext
    #: trusts the same roots as ``ssl_context``; used to reach the control vantage
    control_ssl_context: ssl.SSLContext
    #: "ip:port" of the resolver for the wire-level UDP query, or None to skip it
    udp_resolver: str | None
    report_id: str
    test_start_time: str
    annotations: dict[str, Any] = field(default_factory=dict)
    #: pooled HTTP client for the control (set by the session inside its trio run)
    control_pool: Any = None
    #: the run's facts, one object per run (set by the session inside its trio run; None
    #: outside a run: the web flow then records no run facts and follows nothing up)
    run_facts: RunFacts | None = None
    innocuous_sni: str = "example.org"
    innocuous_host: str = "example.org"
    #: every connection, lookup and datagram of the run goes through it
    network: Network = TRIO


def browser_headers(config: Config) -> list[tuple[str, str]]:
    """The request headers of a browser visit (and of the control's fetch of the same URL)."""
    return [
        ("User-Agent", config.user_agent),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.9"),
    ]
