"""``measure_packet(target, ctx=...)``: one ``censor_trace`` measurement (facts only).

The measurement is OONI-shaped (the base envelope of :mod:`probe.envelope`, the test's name and
version from its registry entry, :mod:`probe.registry`) and holds facts only;
:func:`probe.analysis.packet.analyze_packet` adds the verdict keys (the session's ``finish``).
Its test keys (docs/packet.md, "Fields"):

- ``x_target``: what was traced and which web measurement asked for it;
- ``iterative_trace``: one entry per traced address, with its ``control_trace`` and
  ``target_trace``, each a list of ``iterations`` (one per TTL: the handshake's SYN-ACK, the
  replies after the trigger, the packets sent), and for TCP ``other_port`` (who answers a SYN
  to the address's other web port);
- ``x_packets_sent``, ``x_truncated`` (the packet cap stopped a trace), ``x_limits``;
- ``x_skipped`` and ``x_skipped_endpoints``: why nothing was sent (the connect policy,
  :class:`probe.policy.ConnectPolicy`, refused the address: asked before the first probe);
- ``x_failure`` (:func:`failed_measurement`): the trace raised; nothing else is claimed.

:func:`embed` puts the facts of follow-ups into the web measurement that asked for them
(``test_keys.x_packet``), where the web verdict (:func:`probe.analysis.analyze`) uses them.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import trio

from probe import registry
from probe.context import RunContext
from probe.envelope import TestIdentity, envelope
from probe.failures import Operation, classify
from probe.netaddr import join_endpoint
from probe.packet import triggers
from probe.packet.capture import Capture, Captured
from probe.packet.hops import AsnLookup, HopPolicy, no_lookup, parse_asn, policy
from probe.packet.probes import Probe, dns_probe, tcp_probe
from probe.packet.spec import (
    CONTROL_DNS_NAME,
    CONTROL_SERVER_NAME,
    DNS_PROBE_WORST_CASE,
    TCP_PROBE_WORST_CASE,
    PacketLimits,
)
from probe.packet.target import PacketTarget
from probe.packet.tracer import Budget, Pacer, Prober, Traces, single, trace_pair
from probe.packet.wire import describe
from probe.policy import ConnectPolicy

#: the test this module measures (the caller may pass its spec, as the session does)
TEST: TestIdentity = registry.spec(registry.CENSOR_TRACE)


@dataclass(frozen=True, slots=True)
class PacketContext:
    """What every packet-level measurement of one run shares."""

    run: RunContext
    limits: PacketLimits = field(default_factory=PacketLimits)
    #: router address -> (ASN, organisation), from the ASN database (probe.geo)
    lookup: AsnLookup = no_lookup
    #: the headers after Host of the HTTP trigger (the web test's)
    headers: Sequence[tuple[str, str]] = ()


def _round(seconds: float) -> float:
    return round(seconds, 6)


def refused(target: PacketTarget, ctx: PacketContext) -> str | None:
    """Why no packet may go to ``target``'s address (:class:`probe.policy.ConnectPolicy`, the
    rule of every test: for a public target, never a special-purpose address), or None."""
    host = urlsplit(target.url).hostname or ""
    rule = ConnectPolicy.for_target(host, ctx.run.config.public_ranges)
    if rule.allows(target.address):
        return None
    return f"{target.address} is a special-purpose address: never probed"


async def measure_packet(
    target: PacketTarget,
    *,
    ctx: PacketContext,
    test: TestIdentity = TEST,
    release: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Trace ``target`` (control, then the real trigger) and return the measurement.

    The connect policy is asked first: a refused address gets a measurement that says why
    (``x_skipped``, ``x_skipped_endpoints``) and no packet at all. ``release`` (the registry's
    measure signature) is not used: every moment of a trace is active."""
    started = datetime.now(UTC)
    zero = trio.current_time()
    budget = Budget(ctx.limits.max_packets)
    test_keys: dict[str, Any] = {"x_target": target.as_json()}
    why = refused(target, ctx)
    if why is not None:
        test_keys["x_skipped"] = why
        test_keys["x_skipped_endpoints"] = [join_endpoint(target.address, target.port)]
        test_keys["iterative_trace"] = []
    else:
        test_keys["iterative_trace"] = [await _traced(target, ctx, budget, zero=zero)]
    test_keys["x_packets_sent"] = packets_sent(test_keys["iterative_trace"])
    test_keys["x_truncated"] = budget.truncated
    test_keys["x_limits"] = ctx.limits.as_json()
    runtime = trio.current_time() - zero
    return _envelope(target, ctx, test, started=started, runtime=runtime, test_keys=test_keys)


async def _traced(
    target: PacketTarget, ctx: PacketContext, budget: Budget, *, zero: float
) -> dict[str, Any]:
    """The trace entry of ``target``: both traces and, for TCP, the other web port."""
    capture = Capture(target.address, transports=("udp",) if target.stage == "dns" else ("tcp",))
    pacer = Pacer(ctx.limits.probes_per_second)
    worst = DNS_PROBE_WORST_CASE if target.stage == "dns" else TCP_PROBE_WORST_CASE
    other: Probe | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(capture.run)
        prober = _prober(target, ctx, capture)
        traces = await trace_pair(
            prober, limits=ctx.limits, budget=budget, pacer=pacer, worst_case=worst
        )
        if target.stage != "dns" and traces.control and traces.control[0].failure is None:
            other = await single(
                prober, 0, "other-port", budget=budget, pacer=pacer, worst_case=worst
            )
        nursery.cancel_scope.cancel()
    own = parse_asn(ctx.run.config.probe_asn)
    entry = _trace_entry(target, traces, capture, zero=zero, own_asn=own, ctx=ctx)
    if other is not None:
        entry["other_port"] = _other_port(other_port(target.port), other, capture, zero=zero)
    return entry


def failed_measurement(
    target: PacketTarget, exc: BaseException, *, ctx: PacketContext, test: TestIdentity = TEST
) -> dict[str, Any]:
    """The measurement of a target whose trace raised (a bug, a socket the system refused):
    ``x_failure`` says what, nothing else is claimed."""
    test_keys: dict[str, Any] = {
        "x_target": target.as_json(),
        "x_failure": classify(exc, Operation.TOP_LEVEL).failure,
        "iterative_trace": [],
        "x_packets_sent": None,
        "x_truncated": False,
        "x_limits": ctx.limits.as_json(),
    }
    started = datetime.now(UTC)
    return _envelope(target, ctx, test, started=started, runtime=0.0, test_keys=test_keys)


def _envelope(
    target: PacketTarget,
    ctx: PacketContext,
    test: TestIdentity,
    *,
    started: datetime,
    runtime: float,
    test_keys: dict[str, Any],
) -> dict[str, Any]:
    msmt = envelope(
        ctx.run, test, input=target.url, started=started, runtime=runtime, test_keys=test_keys
    )
    msmt["extensions"] = {}  # none of OONI's sub-formats (dnst, tcpconnect, ...) is used
    return msmt


def control_name(target: PacketTarget) -> str:
    return CONTROL_DNS_NAME if target.stage == "dns" else CONTROL_SERVER_NAME


def _payload(target: PacketTarget, name: str, ctx: PacketContext) -> bytes:
    if target.stage == "tls":
        return triggers.client_hello(name)
    if target.stage == "http":
        return triggers.http_request(name, path=target.path, headers=ctx.headers)
    return triggers.dns_query(name)


def _prober(target: PacketTarget, ctx: PacketContext, capture: Capture) -> Prober:
    timeouts = ctx.run.config.timeouts

    send = dns_probe if target.stage == "dns" else tcp_probe

    async def probe(ttl: int, role: str) -> Probe:
        if role == "other-port":  # a handshake with the address's other web port, no trigger
            return await tcp_probe(
                target.address,
                other_port(target.port),
                ttl=ttl,
                role=role,
                payload=None,
                capture=capture,
                timeouts=timeouts,
            )
        name = target.name if role == "target" else control_name(target)
        return await send(
            target.address,
            target.port,
            ttl=ttl,
            role=role,
            payload=_payload(target, name, ctx),
            capture=capture,
            timeouts=timeouts,
        )

    return probe


def other_port(port: int) -> int:
    """The address's other web port: 80 for 443, 443 for anything else."""
    return 80 if port == 443 else 443


def _other_port(port: int, p: Probe, capture: Capture, *, zero: float) -> dict[str, Any]:
    """Who answers a SYN to the address's other web port: its SYN-ACK, or its RST."""
    answer = next((c for c in capture.packets(p.key) if c.origin == "peer"), None)
    return {
        "port": port,
        "failure": p.failure,
        "packets_sent": p.packets_sent,
        "answer": describe(answer.raw, t=answer.t - zero) if answer is not None else None,
    }


def _routers(probes: Sequence[Probe], capture: Capture) -> list[str]:
    """ICMP sources in TTL order (the path as the probes saw it)."""
    out: list[str] = []
    for p in sorted(probes, key=lambda p: p.ttl):
        for c in capture.packets(p.key):
            if c.origin == "icmp":
                src = socket.inet_ntoa(c.raw[12:16])
                if src != capture.peer and src not in out:
                    out.append(src)
    return out


def _trace_entry(
    target: PacketTarget,
    traces: Traces,
    capture: Capture,
    *,
    zero: float,
    own_asn: int | None,
    ctx: PacketContext,
) -> dict[str, Any]:
    hops = policy(
        _routers([*traces.control, *traces.target], capture),
        own_asn=own_asn,
        lookup=ctx.lookup,
        public_ranges=ctx.run.config.public_ranges,
    )
    return {
        "stage": target.stage,
        "address": join_endpoint(target.address, target.port),
        "control_trace": {
            "name": control_name(target),
            "iterations": [_iteration(p, capture, zero=zero, hops=hops) for p in traces.control],
        },
        "target_trace": {
            "name": target.name,
            "iterations": [_iteration(p, capture, zero=zero, hops=hops) for p in traces.target],
        },
    }


def _iteration(p: Probe, capture: Capture, *, zero: float, hops: HopPolicy) -> dict[str, Any]:
    packets = capture.packets(p.key)
    out: dict[str, Any] = {
        "ttl": p.ttl,
        "t0": _round(p.t0 - zero),
        "t": _round(p.t - zero),
        "failure": p.failure,
        "packets_sent": p.packets_sent,
    }
    if p.key[0] == "tcp":
        syn_ack = next((c for c in packets if c.is_syn), None)
        out["handshake"] = {
            "syn_ack": _facts(syn_ack, capture, zero=zero, hops=hops) if syn_ack else None,
            "rtt": None if p.rtt is None else _round(p.rtt),
        }
    sent_at = p.sent_at
    replies = [] if sent_at is None else [c for c in packets if c.t >= sent_at and not c.is_syn]
    on_time = [c for c in replies if c.t <= p.closed_at]
    late = [c for c in replies if c.t > p.closed_at]
    out["replies"] = [_facts(c, capture, zero=zero, hops=hops) for c in on_time]
    out["late_replies"] = [_facts(c, capture, zero=zero, hops=hops) for c in late]
    if p.key[0] == "tcp":
        # our kernel answers each late packet of the closed connection with a RST
        out["packets_sent"] += sum(1 for c in late if c.origin == "peer" and not c.is_rst)
    return out


def packets_sent(trace_entries: Sequence[Mapping[str, Any]]) -> int:
    """Every packet the iterations of these trace entries sent (late RSTs included)."""
    traced: int = sum(
        it.get("packets_sent", 0)
        for entry in trace_entries
        for role in ("control_trace", "target_trace")
        for it in entry.get(role, {}).get("iterations", [])
    )
    other: int = sum(e.get("other_port", {}).get("packets_sent", 0) for e in trace_entries)
    return traced + other


def _facts(c: Captured, capture: Capture, *, zero: float, hops: HopPolicy) -> dict[str, Any]:
    facts = describe(c.raw, t=c.t - zero)
    src = facts.get("src")
    if c.origin == "icmp" and isinstance(src, str) and src != capture.peer:
        facts.update(hops.describe(src))
    return facts


def embed(web: Mapping[str, Any], follow_ups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of the web measurement ``web`` with the facts of its packet-level ``follow_ups``
    under ``test_keys.x_packet`` (their traces in order; identity and cost summed up)."""
    out = copy.deepcopy(dict(web))
    if not follow_ups:
        return out
    first = follow_ups[0]
    traces: list[Any] = []
    for msmt in follow_ups:
        traces.extend(msmt.get("test_keys", {}).get("iterative_trace") or [])
    out.setdefault("test_keys", {})["x_packet"] = {
        "test_name": first.get("test_name"),
        "test_version": first.get("test_version"),
        "report_id": first.get("report_id"),
        "measurement_start_time": first.get("measurement_start_time"),
        "iterative_trace": copy.deepcopy(traces),
        "x_packets_sent": sum(m.get("test_keys", {}).get("x_packets_sent", 0) for m in follow_ups),
        "x_truncated": any(m.get("test_keys", {}).get("x_truncated") for m in follow_ups),
    }
    return out
