"""Web Connectivity for one URL: the stages in order, every step recorded, no verdicts here.

Flow (one :class:`~probe.trace.Trace` per target; docs/ARCHITECTURE.md):

1. depth 0 DNS: the system resolver (getaddrinfo) and, concurrently, a wire-level UDP query
   to the configured resolver that keeps listening for injected duplicates;
2. the control request (test helper) runs concurrently with everything below;
3. TCP connect to every distinct address (one attempt each), TLS on each connection for https;
   every connect (main flow, redirects, diagnostics) first asks the target's
   :class:`~probe.policy.ConnectPolicy`: for a public target a special-purpose address, from
   DNS or from a redirect's IP literal, is listed in ``x_skipped_endpoints``, never contacted;
4. HTTP GET over the first good connection, in resolution order; redirects by hand, each hop
   measured again through DNS/TCP/TLS/HTTP with a ``depth=N`` tag. A Location is first held
   to the rules of a target URL (:func:`probe.inputs.target_url`; a broken one is
   ``http_invalid_redirect_location_host``), then the connect policy decides where the hop
   may connect (the validator says what a valid URL is, the policy where to go);
5. diagnostics after a failure, on a NEW connection to the SAME address: a TLS handshake with an
   innocuous SNI (``x_diag=sni_retry``), an HTTP request with an innocuous Host
   (``x_diag=host_retry``). They let the analysis tell SNI/Host filtering from IP blocking;
6. in a run (``ctx.run_facts``, :mod:`probe.runfacts`): the run's facts are recorded
   (``x_run_baseline``, the stage times of the run's other finished targets, as they were when
   this fetch ended; ``x_nxdomain_canary``) and, when they make the target *suspect* of
   throttling (:func:`probe.analysis.throttling.follow_up_plan`: slow stage times or a crawl
   next to the baseline and the control), the throughput follow-up runs on NEW connections to
   the SAME address: the same URL with ``Range: bytes=0-`` :data:`FOLLOW_UP_BYTES` under the
   same SNI/Host (``x_diag=throughput``) and a handshake with an innocuous SNI
   (``x_diag=throughput_sni``); ``x_throughput_follow_up`` says why. The measurement then
   joins the run's baseline (it never counts itself), before the run's slot is released: the
   next target of a run measured one at a time sees it.

Every decision is taken from the :class:`~probe.stages.result.StageResult` a stage returned
(never from the trace lists, where a concurrent attempt's event may be the last one). Every
network operation goes through ``ctx.network``. The result is a JSON-ready dict; the session
publishes it (:mod:`probe.privacy`) and adds verdicts computed from the published copy.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import trio

from probe import registry
from probe.analysis.observations import observe
from probe.analysis.throttling import FollowUpPlan, follow_up_plan
from probe.archival import ControlRequest
from probe.context import RunContext, browser_headers
from probe.control.client import query_control
from probe.envelope import (
    EVENT_LISTS,
    TestIdentity,
    dump_events,
    envelope,
    public_ranges,
    resolver_ip,
)
from probe.failures import OpFailure, classify, failed
from probe.inputs import InputError, target_url
from probe.net import close_now
from probe.netaddr import join_endpoint, parse_ip
from probe.policy import ConnectPolicy
from probe.stages import dns, http, tcp, tls
from probe.trace import Trace
from probe.vocabulary import DIAGNOSABLE, Failure, Operation, unknown_failure

TEST: Final = registry.spec(registry.WEB_CONNECTIVITY)
#: how much the throughput follow-up asks for: seconds of a throttled flow, a blink otherwise
FOLLOW_UP_BYTES: Final = 256 * 1024


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(slots=True)
class _Conn:
    """An established connection (TCP, and TLS for https) to one address."""

    ip: str
    transaction_id: int
    stream: trio.abc.Stream
    alpn: str


@dataclass(slots=True)
class _Attempt:
    """What connecting to one address gave: the connection, or the step that failed."""

    ip: str
    conn: _Conn | None
    tcp: tcp.TCPResult
    tls: tls.TLSResult | None = None


@dataclass(slots=True)
class _Flow:
    """Mutable per-target state, owned by one task; never shared across targets."""

    trace: Trace
    ctx: RunContext
    test: TestIdentity
    #: where this target's measurement may connect (one rule for every hop)
    policy: ConnectPolicy
    skipped: list[str] = field(default_factory=list)
    control: dict[str, Any] | None = None
    control_failure: str | None = None
    control_request: dict[str, Any] | None = None
    dns_failure: str | None = None
    error: OpFailure | None = None
    release: Callable[[], None] | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: ``x_run_baseline`` as it was when the fetch ended (in a run)
    baseline: dict[str, Any] | None = None
    follow_up: FollowUpPlan | None = None
    #: this target joined the run's baseline already
    joined: bool = False


async def measure_web(
    url: str,
    *,
    ctx: RunContext,
    test: TestIdentity = TEST,
    release: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Measure ``url`` and return the OONI measurement (facts only, no verdict keys).

    ``release`` is called when only passive listening (late DNS duplicates) remains.
    """
    trace = Trace()
    flow = _Flow(trace=trace, ctx=ctx, test=test, policy=_policy(url, ctx), release=release)
    timeouts = ctx.config.timeouts
    with trio.move_on_after(timeouts.target) as deadline:
        try:
            await _measure(url, flow)
        except Exception as exc:  # a bug or an unexpected error must not lose the target
            flow.error = classify(exc, Operation.TOP_LEVEL)
    if deadline.cancelled_caught:
        flow.error = failed(Failure.GENERIC_TIMEOUT_ERROR, Operation.TOP_LEVEL)
    measurement = _assemble(url, flow, runtime=trace.elapsed())
    if not flow.joined and ctx.run_facts is not None:  # the deadline or an error came first
        ctx.run_facts.baseline.add(measurement)
    return measurement


def failed_measurement(
    url: str, exc: BaseException, *, ctx: RunContext, test: TestIdentity = TEST
) -> dict[str, Any]:
    """The measurement of a target whose processing raised outside the stages."""
    flow = _Flow(trace=Trace(), ctx=ctx, test=test, policy=_policy(url, ctx))
    flow.error = classify(exc, Operation.TOP_LEVEL)
    return _assemble(url, flow, runtime=0.0)


def _policy(url: str, ctx: RunContext) -> ConnectPolicy:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    return ConnectPolicy.for_target(host, ctx.config.public_ranges)


async def _measure(url: str, flow: _Flow) -> None:
    ctx = flow.ctx
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or default_port(parts.scheme)
    tags0 = ["depth=0", "classic"]

    async with trio.open_nursery() as nursery:
        if ctx.udp_resolver and parse_ip(host) is None:
            # the wire-level lookup is a fact for the analysis (injection, resolver comparison);
            # it keeps listening for late duplicates, so nothing waits for it
            nursery.start_soon(_udp_lookup, flow, host, ["depth=0"])
        addresses = await _resolve(flow, host, tags=tags0)
        async with trio.open_nursery() as active:
            if ctx.config.control_url:
                endpoints = [join_endpoint(ip, port) for ip in addresses]
                active.start_soon(_run_control, flow, url, endpoints)
            await _fetch_chain(flow, url, first_addresses=addresses)
        await _follow_up(flow, url)
        if ctx.run_facts is not None:
            ctx.run_facts.baseline.add(_assemble(url, flow, runtime=flow.trace.elapsed()))
            flow.joined = True
        if flow.release is not None:
            flow.release()


async def _resolve(flow: _Flow, host: str, *, tags: Sequence[str]) -> list[str]:
    """Addresses for ``host``: an IP literal as is, else the system resolver's answers."""
    if parse_ip(host) is not None:
        return [host.strip("[]")]
    res = await dns.lookup_getaddrinfo(
        flow.trace, host, timeouts=flow.ctx.config.timeouts, tags=tags, net=flow.ctx.network
    )
    if "classic" in tags:
        flow.dns_failure = res.failure
    return list(dict.fromkeys(res.addresses))


async def _udp_lookup(flow: _Flow, host: str, tags: list[str]) -> None:
    assert flow.ctx.udp_resolver is not None
    await dns.lookup_udp(
        flow.trace,
        host,
        resolver=flow.ctx.udp_resolver,
        timeouts=flow.ctx.config.timeouts,
        tags=tags,
        net=flow.ctx.network,
    )


async def _run_control(flow: _Flow, url: str, endpoints: list[str]) -> None:
    ctx = flow.ctx
    assert ctx.config.control_url is not None
    request = ControlRequest(
        http_request=url,
        http_request_headers={k: [v] for k, v in browser_headers(ctx.config)},
        tcp_connect=endpoints,
    )
    flow.control_request = request.model_dump(mode="json")
    flow.control, flow.control_failure = await query_control(
        ctx.config.control_url,
        request,
        ssl_context=ctx.control_ssl_context,
        timeouts=ctx.config.timeouts,
        pool=ctx.control_pool,
        network=ctx.network,
    )


async def _fetch_chain(flow: _Flow, url: str, *, first_addresses: list[str]) -> None:
    config = flow.ctx.config
    current = url
    addresses: list[str] | None = first_addresses
    for depth in range(config.max_redirects + 1):
        parts = urlsplit(current)
        host = parts.hostname or ""
        tags = [f"depth={depth}"] + (["classic"] if depth == 0 else [])
        if addresses is None:
            addresses = await _resolve(flow, host, tags=tags)
        location = await _fetch_hop(flow, current, addresses, tags=tags)
        if location is None:
            return
        nxt = _redirect_target(current, location)
        if nxt is None:
            flow.error = failed(
                Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST, Operation.HTTP_ROUND_TRIP
            )
            return
        current, addresses = nxt, None
    flow.error = failed(
        unknown_failure(f"stopped after {config.max_redirects} redirects"),
        Operation.HTTP_ROUND_TRIP,
    )


def _redirect_target(current: str, location: str) -> str | None:
    """The URL a Location leads to, held to the rules of a target URL (probe.inputs: http(s),
    a host, a valid port, no zone id, at most 4096 characters, IDN as A-labels, credentials
    removed); None when it breaks them (a hostile server's Location is a fact, not a crash)."""
    try:
        return target_url(urljoin(current, location)).url
    except (InputError, ValueError):
        return None


async def _fetch_hop(flow: _Flow, url: str, addresses: list[str], *, tags: list[str]) -> str | None:
    """Connect to every address, fetch over the first good connection; the redirect target."""
    ctx = flow.ctx
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or default_port(parts.scheme)
    https = parts.scheme == "https"
    usable, skipped = flow.policy.split(addresses, port)
    flow.skipped.extend(skipped)

    attempts: list[_Attempt | None] = [None] * len(usable)

    async def attempt(i: int, ip: str) -> None:
        attempts[i] = await _connect(
            flow, ip, port, server_name=host, ssl_context=ctx.ssl_context if https else None,
            tags=tags,
        )  # fmt: skip

    async with trio.open_nursery() as nursery:
        for i, ip in enumerate(usable):
            nursery.start_soon(attempt, i, ip)

    done = [a for a in attempts if a is not None]
    chosen = next((a.conn for a in done if a.conn is not None), None)
    for a in done:
        if a.conn is not None and a.conn is not chosen:
            await close_now(a.conn.stream)

    async with trio.open_nursery() as nursery:
        for a in done:
            if a.tls is not None and a.tls.failure in DIAGNOSABLE:
                nursery.start_soon(_sni_retry, flow, a.ip, port, tags)
        if chosen is None:
            return None
        result = await _get(flow, url, chosen, port, tags=tags)
        if result.failure in DIAGNOSABLE and result.value.status == 0:
            nursery.start_soon(_host_retry, flow, url, chosen.ip, port, tags)
    response = result.value
    if result.ok and 300 <= response.status < 400 and response.location:
        return response.location
    return None


async def _connect(
    flow: _Flow,
    ip: str,
    port: int,
    *,
    server_name: str,
    ssl_context: ssl.SSLContext | None,
    tags: list[str],
) -> _Attempt | None:
    """One TCP connect to ``ip:port`` and, with ``ssl_context``, a TLS handshake on it; None
    (the endpoint listed as skipped) when the connect policy forbids the address."""
    if not flow.policy.allows(ip):
        flow.skipped.append(join_endpoint(ip, port))
        return None
    timeouts = flow.ctx.config.timeouts
    net = flow.ctx.network
    txid = flow.trace.new_transaction_id()
    connected = await tcp.connect(
        flow.trace, ip, port, timeouts=timeouts, transaction_id=txid, tags=tags, net=net
    )
    stream = connected.value
    if stream is None:
        return _Attempt(ip=ip, conn=None, tcp=connected)
    if ssl_context is None:
        return _Attempt(ip=ip, conn=_Conn(ip, txid, stream, ""), tcp=connected)
    handshake = await tls.handshake(
        flow.trace,
        stream,
        address=join_endpoint(ip, port),
        server_name=server_name,
        ssl_context=ssl_context,
        timeouts=timeouts,
        transaction_id=txid,
        tags=tags,
        net=net,
    )
    session = handshake.value
    if session is None:
        return _Attempt(ip=ip, conn=None, tcp=connected, tls=handshake)
    conn = _Conn(ip, txid, session, session.selected_alpn_protocol() or "")
    return _Attempt(ip=ip, conn=conn, tcp=connected, tls=handshake)


async def _get(
    flow: _Flow,
    url: str,
    conn: _Conn,
    port: int,
    *,
    tags: list[str],
    headers: list[tuple[str, str]] | None = None,
    body_cap: int | None = None,
) -> http.HTTPResult:
    ctx = flow.ctx
    try:
        return await http.get(
            flow.trace,
            conn.stream,
            url=url,
            address=join_endpoint(conn.ip, port),
            alpn=conn.alpn,
            headers=headers if headers is not None else browser_headers(ctx.config),
            timeouts=ctx.config.timeouts,
            body_cap=ctx.config.body_cap if body_cap is None else body_cap,
            transaction_id=conn.transaction_id,
            tags=tags,
        )
    finally:
        await close_now(conn.stream)


def _diag_tags(tags: list[str], name: str) -> list[str]:
    return [t for t in tags if t != "classic"] + [f"x_diag={name}"]


async def _sni_retry(
    flow: _Flow, ip: str, port: int, tags: list[str], *, name: str = "sni_retry"
) -> None:
    """Same address, innocuous SNI, no verification: does a ServerHello come back (and how
    fast)? ``name`` is the ``x_diag`` tag."""
    ctx = flow.ctx
    attempt = await _connect(
        flow,
        ip,
        port,
        server_name=ctx.innocuous_sni,
        ssl_context=ctx.diag_ssl_context,
        tags=_diag_tags(tags, name),
    )
    if attempt is not None and attempt.conn is not None:
        await close_now(attempt.conn.stream)


async def _host_retry(flow: _Flow, url: str, ip: str, port: int, tags: list[str]) -> None:
    """Same address, innocuous Host header (and SNI): is the reset tied to the name?"""
    ctx = flow.ctx
    parts = urlsplit(url)
    diag_tags = _diag_tags(tags, "host_retry")
    attempt = await _connect(
        flow,
        ip,
        port,
        server_name=ctx.innocuous_sni,
        ssl_context=ctx.diag_ssl_context if parts.scheme == "https" else None,
        tags=diag_tags,
    )
    if attempt is None or attempt.conn is None:
        return
    netloc = ctx.innocuous_host if parts.port is None else f"{ctx.innocuous_host}:{parts.port}"
    await _get(flow, parts._replace(netloc=netloc).geturl(), attempt.conn, port, tags=diag_tags)


async def _follow_up(flow: _Flow, url: str) -> None:
    """Step 6: snapshot the run baseline; follow up a suspect target (module docstring)."""
    facts = flow.ctx.run_facts
    if facts is None:
        return
    flow.baseline = facts.baseline.snapshot()
    plan = follow_up_plan(observe(_assemble(url, flow, runtime=flow.trace.elapsed())))
    if plan is None:
        return
    flow.follow_up = plan
    ctx = flow.ctx
    https = urlsplit(plan.url).scheme == "https"
    tags = [f"depth={plan.depth}", "x_diag=throughput"]
    attempt = await _connect(
        flow, plan.ip, plan.port, server_name=plan.server_name,
        ssl_context=ctx.ssl_context if https else None, tags=tags,
    )  # fmt: skip
    if attempt is not None and attempt.conn is not None:
        headers = [*browser_headers(ctx.config), ("Range", f"bytes=0-{FOLLOW_UP_BYTES - 1}")]
        await _get(
            flow, plan.url, attempt.conn, plan.port, tags=tags, headers=headers,
            body_cap=FOLLOW_UP_BYTES,
        )  # fmt: skip
    if https:
        await _sni_retry(flow, plan.ip, plan.port, [f"depth={plan.depth}"], name="throughput_sni")


def _run_keys(flow: _Flow) -> dict[str, Any]:
    """The run's facts this measurement records (none outside a run)."""
    facts = flow.ctx.run_facts
    if facts is None:
        return {}
    keys = facts.keys(flow.baseline)
    if flow.follow_up is not None:
        plan = flow.follow_up
        keys["x_throughput_follow_up"] = {
            "url": plan.url,
            "address": join_endpoint(plan.ip, plan.port),
            "reasons": list(plan.reasons),
            "range_bytes": FOLLOW_UP_BYTES,
        }
    return keys


def _assemble(url: str, flow: _Flow, *, runtime: float) -> dict[str, Any]:
    ctx = flow.ctx
    dumped = dump_events(flow.trace, names=(*EVENT_LISTS, "dns_duplicates"))
    test_keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": resolver_ip(ctx),
        "retries": None,
        "socksproxy": None,
        "queries": dumped["queries"],
        "tcp_connect": dumped["tcp_connect"],
        "tls_handshakes": dumped["tls_handshakes"],
        "requests": dumped["requests"],
        "network_events": dumped["network_events"],
        "x_dns_duplicate_responses": dumped["dns_duplicates"],
        "x_skipped_endpoints": list(dict.fromkeys(flow.skipped)),
        "x_public_ranges": public_ranges(ctx),
        "x_control_request": flow.control_request,
        "control": flow.control if flow.control is not None else {},
        "control_failure": flow.control_failure,
        "dns_experiment_failure": flow.dns_failure,
        "x_failure": None if flow.error is None else flow.error.failure,
        "x_failed_operation": None if flow.error is None else flow.error.operation.value,
        **_run_keys(flow),
    }
    return envelope(
        ctx,
        flow.test,
        input=url,
        started=flow.started,
        runtime=runtime,
        test_keys=test_keys,
    )
