"""The OONI base-format envelope around a test's keys (df-000), shared by every test we write.

Web Connectivity (:mod:`probe.experiment`) and the app tests (:mod:`probe.apps.runner`) record
their events in a :class:`~probe.trace.Trace` and differ only in their test keys; the top-level
keys, the privacy defaults and the event dump are the same and live here. The test's name and
version come from its :class:`~probe.registry.ExperimentSpec`, which the caller passes in.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Protocol

from probe import SOFTWARE_NAME, __version__
from probe.archival import WEB_CONNECTIVITY_EXTENSIONS
from probe.context import RunContext
from probe.meta import format_time
from probe.netaddr import endpoint_host
from probe.trace import Trace


class TestIdentity(Protocol):
    """What the envelope needs to know of a test (a :class:`probe.registry.ExperimentSpec`)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


EVENT_LISTS = ("queries", "tcp_connect", "tls_handshakes", "requests", "network_events")


def dump_events(trace: Trace, *, names: tuple[str, ...] = EVENT_LISTS) -> dict[str, Any]:
    """The trace's events as JSON-ready lists; ``requests`` newest first, as OONI wants."""
    dumped = {
        name: [event.model_dump(mode="json") for event in getattr(trace, name)] for name in names
    }
    if "requests" in dumped:
        dumped["requests"].reverse()
    return dumped


def _round(seconds: float) -> float:
    return math.floor(seconds * 1e6) / 1e6


def envelope(
    ctx: RunContext,
    test: TestIdentity,
    *,
    input: str | None,
    started: datetime,
    runtime: float,
    test_keys: dict[str, Any],
) -> dict[str, Any]:
    """A complete measurement of ``test``: OONI's top-level keys around ``test_keys``."""
    config = ctx.config
    backend = (
        {"backend": {"address": config.control_url, "type": "https"}} if config.control_url else {}
    )
    return {
        "annotations": dict(ctx.annotations),
        "data_format_version": "0.2.0",
        "extensions": dict(WEB_CONNECTIVITY_EXTENSIONS),
        "input": input,
        "measurement_start_time": format_time(started),
        "test_start_time": ctx.test_start_time,
        "probe_asn": config.probe_asn if config.privacy.include_asn else "AS0",
        "probe_cc": config.probe_cc if config.privacy.include_cc else "ZZ",
        "probe_ip": "127.0.0.1",
        "probe_network_name": config.probe_network_name if config.privacy.include_asn else "",
        "report_id": ctx.report_id,
        "resolver_asn": "AS0",
        "resolver_ip": resolver_ip(ctx),
        "resolver_network_name": "",
        "software_name": SOFTWARE_NAME,
        "software_version": __version__,
        "test_helpers": backend,
        "test_keys": test_keys,
        "test_name": test.name,
        "test_runtime": _round(runtime),
        "test_version": test.version,
    }


def resolver_ip(ctx: RunContext) -> str:
    """The address of the run's UDP resolver, without port nor brackets ("" when none)."""
    if not ctx.udp_resolver:
        return ""
    return endpoint_host(ctx.udp_resolver)


def public_ranges(ctx: RunContext) -> list[str]:
    """The special-purpose ranges this run treated as public (the lab's), for re-analysis."""
    return [str(r) for r in ctx.config.public_ranges]
