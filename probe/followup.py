"""The throughput follow-up of a suspect target, and the run loop step that records run facts.

A small throttled page finishes before its goodput can be measured (docs/verdicts.md,
"Throttling"). When the facts of a finished measurement make a target suspect
(:func:`probe.analysis.throttling.suspect`: its handshake and first byte were slow next to
the run's baseline and the control, or it was still flowing under the goodput floor), the
probe measures a larger transfer on purpose, with the existing stages, on new connections:

1. ``x_diag=throughput``: TCP + TLS (SNI = the host, verified) to the same address as the
   final response, then the same URL with ``Range: bytes=0-262143`` (or a known large object
   of that host, ``large_objects``), its progress sampled as every fetch is;
2. ``x_diag=throughput_sni`` (https): a TLS handshake with an innocuous SNI to the same
   address, timed: fast there and slow under the real SNI ties the slowness to the name.

The events are merged into the measurement (transaction ids after the measurement's own,
times continuing its clock) with ``test_keys.x_throughput_follow_up`` saying why and what.

:func:`measure_with_run_facts` is the step the run loop calls per target instead of
``measure_web``: measure, attach the run facts (:mod:`probe.runfacts`: the baseline of the
*other* targets, the NXDOMAIN canary), follow up if suspect, then add the measurement to the
baseline. It builds on the public ``measure_web`` and the stages only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import trio

from probe.analysis.observations import observe
from probe.analysis.throttling import suspect
from probe.analysis.timing import final_http
from probe.context import RunContext, browser_headers
from probe.envelope import dump_events
from probe.experiment import measure_web
from probe.netaddr import join_endpoint, parse_ip
from probe.runfacts import RunFacts
from probe.stages import http, tcp, tls
from probe.trace import Trace

#: how much the follow-up asks for (a Range request): enough for seconds of a throttled flow
FOLLOW_UP_BYTES = 256 * 1024
EVENT_KEYS = ("tcp_connect", "tls_handshakes", "network_events")


@dataclass(frozen=True, slots=True)
class FollowUpPlan:
    url: str
    ip: str
    port: int
    server_name: str
    depth: int
    reasons: tuple[str, ...]

    @property
    def address(self) -> str:
        return join_endpoint(self.ip, self.port)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "address": self.address,
            "reasons": list(self.reasons),
            "range_bytes": FOLLOW_UP_BYTES,
        }


def _split_address(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if parse_ip(host) is None or not port.isdigit():
        return None
    return host, int(port)


def plan(
    measurement: Mapping[str, Any], *, large_objects: Mapping[str, str] | None = None
) -> FollowUpPlan | None:
    """The follow-up a finished measurement calls for, or None (pure).

    ``large_objects`` maps a host to the URL of a known large object of that same host (a
    different host would mean a different SNI: it is ignored then)."""
    obs = observe(measurement)
    reasons = suspect(obs)
    final = final_http(obs)
    if not reasons or final is None:
        return None
    where = _split_address(final.address)
    if where is None:
        return None
    url = final.url
    big = (large_objects or {}).get(final.host)
    if big is not None and (urlsplit(big).hostname or "").lower() == final.host:
        url = big
    return FollowUpPlan(url, where[0], where[1], final.host, final.depth, tuple(reasons))


async def run(follow: FollowUpPlan, *, ctx: RunContext, trace: Trace) -> None:
    """The follow-up's connections, recorded in ``trace`` (never raises for network failures)."""
    timeouts = ctx.config.timeouts
    https = urlsplit(follow.url).scheme == "https"
    tags = [f"depth={follow.depth}", "x_diag=throughput"]
    tid = trace.new_transaction_id()
    connected = await tcp.connect(
        trace, follow.ip, follow.port, timeouts=timeouts, transaction_id=tid, tags=tags
    )
    stream: trio.abc.Stream | None = connected.value
    alpn = ""
    if connected.value is not None and https:
        handshake = await tls.handshake(
            trace, connected.value, address=follow.address, server_name=follow.server_name,
            ssl_context=ctx.ssl_context, timeouts=timeouts, transaction_id=tid, tags=tags,
        )  # fmt: skip
        secure = handshake.value
        alpn = (secure.selected_alpn_protocol() or "") if secure is not None else ""
        stream = secure
    if stream is not None:
        headers = [*browser_headers(ctx.config), ("Range", f"bytes=0-{FOLLOW_UP_BYTES - 1}")]
        await http.get(
            trace, stream, url=follow.url, address=follow.address, alpn=alpn, headers=headers,
            timeouts=timeouts, body_cap=FOLLOW_UP_BYTES, transaction_id=tid, tags=tags,
        )  # fmt: skip
    if https:
        await _innocuous_handshake(follow, ctx=ctx, trace=trace)


async def _innocuous_handshake(follow: FollowUpPlan, *, ctx: RunContext, trace: Trace) -> None:
    timeouts = ctx.config.timeouts
    tags = [f"depth={follow.depth}", "x_diag=throughput_sni"]
    tid = trace.new_transaction_id()
    connected = await tcp.connect(
        trace, follow.ip, follow.port, timeouts=timeouts, transaction_id=tid, tags=tags
    )
    if connected.value is None:
        return
    secure = (await tls.handshake(
        trace, connected.value, address=follow.address, server_name=ctx.innocuous_sni,
        ssl_context=ctx.diag_ssl_context, timeouts=timeouts, transaction_id=tid, tags=tags,
    )).value  # fmt: skip
    if secure is not None:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(secure)


def _max_transaction_id(tk: Mapping[str, Any]) -> int:
    top = 0
    for key in ("queries", "tcp_connect", "tls_handshakes", "requests", "network_events"):
        for event in tk.get(key) or []:
            tid = event.get("transaction_id") if isinstance(event, dict) else None
            if isinstance(tid, int) and tid > top:
                top = tid
    return top


def merge(measurement: dict[str, Any], trace: Trace, follow: FollowUpPlan) -> dict[str, Any]:
    """``measurement`` with the follow-up's events added (transaction ids renumbered after the
    measurement's own; requests newest first) and ``x_throughput_follow_up``."""
    tk = measurement.setdefault("test_keys", {})
    shift = _max_transaction_id(tk)
    dumped = dump_events(trace, names=("requests", *EVENT_KEYS))
    for events in dumped.values():
        for event in events:
            if isinstance(event.get("transaction_id"), int):
                event["transaction_id"] += shift
    for key in EVENT_KEYS:
        tk[key] = [*(tk.get(key) or []), *dumped[key]]
    tk["requests"] = [*dumped["requests"], *(tk.get("requests") or [])]
    tk["x_throughput_follow_up"] = follow.to_json()
    measurement["test_runtime"] = round(max(trace.elapsed(), 0.0), 6)
    return measurement


async def follow_up(
    measurement: dict[str, Any], follow: FollowUpPlan, *, ctx: RunContext
) -> dict[str, Any]:
    """Run the follow-up and merge it; its clock continues the measurement's."""
    runtime = measurement.get("test_runtime")
    offset = float(runtime) if isinstance(runtime, int | float) else 0.0
    trace = Trace(zero=trio.current_time() - offset)
    await run(follow, ctx=ctx, trace=trace)
    return merge(measurement, trace, follow)


class Measure(Protocol):
    def __call__(
        self, url: str, *, ctx: RunContext, release: Callable[[], None] | None = None
    ) -> Awaitable[dict[str, Any]]: ...


async def measure_with_run_facts(
    url: str,
    *,
    ctx: RunContext,
    facts: RunFacts,
    measure: Measure = measure_web,
    large_objects: Mapping[str, str] | None = None,
    release: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Measure ``url``, record the run facts, follow up if suspect, feed the baseline.

    ``release`` (the run loop's slot) is called once everything is done: the follow-up is
    active network work and keeps the target's slot."""
    try:
        measurement = await measure(url, ctx=ctx)
        facts.attach(measurement)
        follow = plan(measurement, large_objects=large_objects)
        if follow is not None:
            measurement = await follow_up(measurement, follow, ctx=ctx)
        facts.baseline.add(measurement)
        return measurement
    finally:
        if release is not None:
            release()
