"""Measure one app: every (host, port) of its app file through the stages, plus the control.

For each host: DNS once (skipped for a fixed address). With ``--resolver`` the wire-level UDP
lookup to that resolver gives the addresses (the user chose that resolver); otherwise the system
resolver (getaddrinfo) does, as OONI's app tests do. Then, per port and in resolution order, one
address after the other until one works: TCP connect, TLS with SNI = host (Mozilla's roots, or
those plus the app's CA for ``trust = "app"``), the HTTP request; the host's ``stage`` says where
to stop. Every connect asks the host's :class:`~probe.policy.ConnectPolicy` first: a
special-purpose address for a public host is never contacted (listed in
``x_skipped_endpoints``). Every event carries the tag ``x_app_host=<id>``.

The control vantage (Web Connectivity test helper) is asked about every (host, port) with the
host's URL on that port and the probe's addresses, concurrently with the probe's own steps.

The result is the OONI measurement with facts only: OONI's ``test_name`` / ``test_version`` and
``input: null`` for whatsapp, telegram, signal and facebook_messenger; ``app_endpoints`` with
``x_app`` and ``input: "app:<name>"`` for the others. ``x_app_hosts`` (the plan) and
``x_app_control`` (the control answers) make :func:`probe.apps.verdict.analyze_app` recomputable;
the session applies it (``Session.finish``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from probe.apps.facts import HOST_TAG
from probe.apps.spec import AppSpec, HostSpec
from probe.archival import ControlRequest
from probe.context import RunContext, browser_headers
from probe.control.client import query_control
from probe.envelope import TestIdentity, dump_events, envelope, public_ranges
from probe.failures import Operation, classify
from probe.net import close_now
from probe.netaddr import join_endpoint
from probe.policy import ConnectPolicy
from probe.stages import dns, http, tcp, tls
from probe.trace import Trace
from probe.vocabulary import Failure

#: addresses tried per (host, port) before giving up (one attempt each, no retries)
MAX_ADDRESSES = 4
#: (host, port) entries measured at once, and control queries in flight, per app
ENTRY_PARALLELISM = 8
CONTROL_PARALLELISM = 4


@dataclass(slots=True)
class _Flow:
    app: AppSpec
    ctx: RunContext
    test: TestIdentity
    trace: Trace
    app_ssl: ssl.SSLContext | None
    entries: trio.CapacityLimiter
    controls: trio.CapacityLimiter
    skipped: list[str] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)


def app_ssl_context(app: AppSpec, ctx: RunContext) -> ssl.SSLContext | None:
    """Mozilla's roots + ``--ca-file`` + the app's own CA, for hosts with ``trust = "app"``."""
    if app.ca_file is None:
        return None
    context = tls.make_ssl_context(ca_file=ctx.config.ca_file)
    context.load_verify_locations(cafile=app.ca_file)
    return context


async def measure_app(
    app: AppSpec,
    *,
    ctx: RunContext,
    test: TestIdentity,
    release: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Measure every host of ``app`` as ``test`` (``registry.app_test(app.ooni_test)``); the
    OONI measurement dict (facts only). ``release`` is the registry's measure signature: an app
    keeps its slot to the end."""
    started = datetime.now(UTC)
    trace = Trace()
    flow = _Flow(
        app=app,
        ctx=ctx,
        test=test,
        trace=trace,
        app_ssl=app_ssl_context(app, ctx),
        entries=trio.CapacityLimiter(ENTRY_PARALLELISM),
        controls=trio.CapacityLimiter(CONTROL_PARALLELISM),
    )
    failure: str | None = None
    with trio.move_on_after(ctx.config.timeouts.target) as deadline:
        try:
            async with trio.open_nursery() as nursery:
                for host in app.hosts:
                    nursery.start_soon(_measure_host, flow, host)
        except Exception as exc:  # a bug must not lose the app's other results
            failure = classify(exc, Operation.TOP_LEVEL).failure
    if deadline.cancelled_caught:
        failure = Failure.GENERIC_TIMEOUT_ERROR.value
    return _assemble(flow, started=started, failure=failure)


def failed_measurement(
    app: AppSpec, exc: BaseException, *, ctx: RunContext, test: TestIdentity
) -> dict[str, Any]:
    """The measurement of an app whose processing raised outside the stages."""
    flow = _Flow(
        app=app,
        ctx=ctx,
        test=test,
        trace=Trace(),
        app_ssl=None,
        entries=trio.CapacityLimiter(1),
        controls=trio.CapacityLimiter(1),
    )
    failure = classify(exc, Operation.TOP_LEVEL).failure
    return _assemble(flow, started=datetime.now(UTC), failure=failure)


async def _measure_host(flow: _Flow, host: HostSpec) -> None:
    tags = [HOST_TAG + host.id]
    if host.is_ip:
        addresses = [host.host]
    else:
        async with flow.entries:
            addresses = await _resolve(flow, host.host, tags)
    async with trio.open_nursery() as nursery:
        if flow.ctx.config.control_url:
            for port in host.ports if host.stage != "dns" else host.ports[:1]:
                nursery.start_soon(_control, flow, host, port, addresses)
        if host.stage == "dns" or not addresses:
            return
        for port in host.ports:
            nursery.start_soon(_measure_entry, flow, host, port, addresses, tags)


async def _resolve(flow: _Flow, name: str, tags: list[str]) -> list[str]:
    ctx = flow.ctx
    timeouts = ctx.config.timeouts
    if ctx.config.resolver:
        result = await dns.lookup_udp(
            flow.trace,
            name,
            resolver=ctx.config.resolver,
            timeouts=timeouts,
            tags=tags,
            net=ctx.network,
        )
    else:
        result = await dns.lookup_getaddrinfo(
            flow.trace, name, timeouts=timeouts, tags=tags, net=ctx.network
        )
    return list(dict.fromkeys(result.addresses))


async def _control(flow: _Flow, host: HostSpec, port: int, addresses: list[str]) -> None:
    ctx = flow.ctx
    assert ctx.config.control_url is not None
    url = host.url(port)
    request = ControlRequest(
        http_request=url,
        http_request_headers={k: [v] for k, v in browser_headers(ctx.config)},
        tcp_connect=[join_endpoint(ip, port) for ip in addresses],
    )
    async with flow.controls:
        response, failure = await query_control(
            ctx.config.control_url,
            request,
            ssl_context=ctx.control_ssl_context,
            timeouts=ctx.config.timeouts,
            network=ctx.network,
        )
    flow.control.append(
        {"host_id": host.id, "port": port, "url": url, "response": response, "failure": failure}
    )


async def _measure_entry(
    flow: _Flow, host: HostSpec, port: int, addresses: list[str], tags: list[str]
) -> None:
    usable, skipped = _policy(flow, host).split(addresses, port)
    flow.skipped.extend(skipped)
    async with flow.entries:
        for ip in usable[:MAX_ADDRESSES]:
            if await _attempt(flow, host, port, ip, tags):
                return


def _policy(flow: _Flow, host: HostSpec) -> ConnectPolicy:
    """The connect policy of one host: the host named in the app file is the target."""
    return ConnectPolicy.for_target(host.host, flow.ctx.config.public_ranges)


async def _attempt(flow: _Flow, host: HostSpec, port: int, ip: str, tags: list[str]) -> bool:
    """One address: connect, handshake, request as far as the host's stage. True if it worked."""
    if not _policy(flow, host).allows(ip):
        flow.skipped.append(join_endpoint(ip, port))
        return False
    ctx = flow.ctx
    trace = flow.trace
    timeouts = ctx.config.timeouts
    txid = trace.new_transaction_id()
    address = join_endpoint(ip, port)
    connected = await tcp.connect(
        trace, ip, port, timeouts=timeouts, transaction_id=txid, tags=tags, net=ctx.network
    )
    if connected.value is None:
        return False
    stream: trio.abc.Stream = connected.value
    alpn = ""
    if host.uses_tls:
        context = flow.app_ssl if host.trust == "app" and flow.app_ssl else ctx.ssl_context
        handshake = await tls.handshake(
            trace,
            stream,
            address=address,
            server_name=host.host if not host.is_ip else None,
            ssl_context=context,
            timeouts=timeouts,
            transaction_id=txid,
            tags=tags,
            net=ctx.network,
        )
        if handshake.value is None:
            return False
        stream, alpn = handshake.value, handshake.value.selected_alpn_protocol() or ""
    if host.stage != "http":
        await close_now(stream)
        return True
    result = await _request(flow, host, port, stream, address, alpn, txid, tags)
    return result.ok


async def _request(
    flow: _Flow,
    host: HostSpec,
    port: int,
    stream: trio.abc.Stream,
    address: str,
    alpn: str,
    txid: int,
    tags: list[str],
) -> http.HTTPResult:
    config = flow.ctx.config
    try:
        return await http.get(
            flow.trace,
            stream,
            url=host.url(port),
            address=address,
            alpn=alpn,
            headers=browser_headers(config),
            timeouts=config.timeouts,
            body_cap=config.body_cap,
            transaction_id=txid,
            tags=tags,
            method=host.method,
        )
    finally:
        await close_now(stream)


def _assemble(flow: _Flow, *, started: datetime, failure: str | None) -> dict[str, Any]:
    ctx, trace, app = flow.ctx, flow.trace, flow.app
    dumped = dump_events(trace)
    test_keys: dict[str, Any] = {
        "agent": "redirect",
        "failed_operation": Operation.TOP_LEVEL.value if failure else None,
        "failure": failure,
        "socksproxy": None,
        **dumped,
        "x_app": app.name,
        "x_app_hosts": [h.model_dump(mode="json", exclude={"note"}) for h in app.hosts],
        "x_app_control": sorted(flow.control, key=lambda c: (c["host_id"], c["port"])),
        "x_skipped_endpoints": sorted(set(flow.skipped)),
        "x_public_ranges": public_ranges(ctx),
    }
    return envelope(
        ctx,
        flow.test,
        input=None if app.ooni_test else app.key,
        started=started,
        runtime=trace.elapsed(),
        test_keys=test_keys,
    )
