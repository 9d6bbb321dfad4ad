"""Web Connectivity for one URL: the stages in order, every step recorded, no verdicts here.

Flow (one :class:`~probe.trace.Trace` per target; docs/ARCHITECTURE.md):

1. depth 0 DNS: the system resolver (getaddrinfo) and, concurrently, a wire-level UDP query
   to the configured resolver that keeps listening for injected duplicates;
2. the control request (test helper) runs concurrently with everything below;
3. TCP connect to every distinct address (one attempt each; bogon answers for a public name are
   listed in ``x_skipped_endpoints`` and never contacted), TLS on each connection for https;
4. HTTP GET over the first good connection, in resolution order; redirects by hand, each hop
   measured again through DNS/TCP/TLS/HTTP with a ``depth=N`` tag;
5. diagnostics after a failure, on a NEW connection to the SAME address: a TLS handshake with an
   innocuous SNI (``x_diag=sni_retry``), an HTTP request with an innocuous Host
   (``x_diag=host_retry``). They let the analysis tell SNI/Host filtering from IP blocking.

The result is a JSON-ready dict; the runner adds verdicts (``probe.analysis``) and scrubs it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import trio

from probe.archival import ControlRequest
from probe.config import Config
from probe.control.client import query_control
from probe.envelope import EVENT_LISTS, dump_events, envelope, public_ranges
from probe.failures import Operation, classify
from probe.inputs import InputError, target_url
from probe.netaddr import is_bogon, join_endpoint, parse_ip
from probe.stages import dns, http, tcp, tls
from probe.trace import Trace

TEST_NAME = "web_connectivity"
TEST_VERSION = "0.5.0"
#: failures after which the SNI / Host diagnostics are worth one more connection
_DIAG_FAILURES = frozenset(
    {"connection_reset", "generic_timeout_error", "eof_error", "connection_refused"}
)


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything a measurement needs besides its URL; built once per run."""

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
    innocuous_sni: str = "example.org"
    innocuous_host: str = "example.org"


def browser_headers(config: Config) -> list[tuple[str, str]]:
    return [
        ("User-Agent", config.user_agent),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.9"),
    ]


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(slots=True)
class _Conn:
    ip: str
    transaction_id: int
    stream: trio.abc.Stream
    alpn: str


@dataclass(slots=True)
class _Flow:
    """Mutable per-target state, owned by one task; never shared across targets."""

    trace: Trace
    ctx: RunContext
    skipped: list[str] = field(default_factory=list)
    control: dict[str, Any] | None = None
    control_failure: str | None = None
    control_request: dict[str, Any] | None = None
    failure: str | None = None
    failed_operation: str | None = None
    release: Callable[[], None] | None = None


async def measure_web(
    url: str, *, ctx: RunContext, release: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Measure ``url`` and return the OONI measurement (facts only, no verdict keys).

    ``release`` is called when only passive listening (late DNS duplicates) remains.
    """
    started = datetime.now(UTC)
    trace = Trace()
    flow = _Flow(trace=trace, ctx=ctx, release=release)
    timeouts = ctx.config.timeouts
    with trio.move_on_after(timeouts.target) as deadline:
        try:
            await _measure(url, flow)
        except Exception as exc:  # a bug or an unexpected error must not lose the target
            flow.failure = classify(exc, Operation.TOP_LEVEL)
            flow.failed_operation = Operation.TOP_LEVEL.value
    if deadline.cancelled_caught:
        flow.failure = "generic_timeout_error"
        flow.failed_operation = Operation.TOP_LEVEL.value
    return _assemble(url, flow, started=started, runtime=trace.elapsed())


def failed_measurement(url: str, exc: BaseException, *, ctx: RunContext) -> dict[str, Any]:
    """The measurement of a target whose processing raised outside the stages."""
    flow = _Flow(trace=Trace(), ctx=ctx)
    flow.failure = classify(exc, Operation.TOP_LEVEL)
    flow.failed_operation = Operation.TOP_LEVEL.value
    return _assemble(url, flow, started=datetime.now(UTC), runtime=0.0)


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
        if flow.release is not None:
            flow.release()


async def _resolve(flow: _Flow, host: str, *, tags: Sequence[str]) -> list[str]:
    """Addresses for ``host``: an IP literal as is, else the system resolver's answers."""
    if parse_ip(host) is not None:
        return [host.strip("[]")]
    res = await dns.lookup_getaddrinfo(
        flow.trace, host, timeouts=flow.ctx.config.timeouts, tags=tags
    )
    return list(dict.fromkeys(res.addresses))


async def _udp_lookup(flow: _Flow, host: str, tags: list[str]) -> None:
    assert flow.ctx.udp_resolver is not None
    await dns.lookup_udp(
        flow.trace,
        host,
        resolver=flow.ctx.udp_resolver,
        timeouts=flow.ctx.config.timeouts,
        tags=tags,
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
            flow.failure = "http_invalid_redirect_location_host"
            flow.failed_operation = Operation.HTTP_ROUND_TRIP.value
            return
        current, addresses = nxt, None
    flow.failure = f"unknown_failure: stopped after {config.max_redirects} redirects"
    flow.failed_operation = Operation.HTTP_ROUND_TRIP.value


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
    host_is_bogon = is_bogon(host, ctx.config.public_ranges)
    usable = []
    for ip in addresses:
        if not host_is_bogon and is_bogon(ip, ctx.config.public_ranges):
            flow.skipped.append(join_endpoint(ip, port))
        else:
            usable.append(ip)

    conns: list[_Conn | None] = [None] * len(usable)
    tls_failures: dict[str, str] = {}

    async def attempt(i: int, ip: str) -> None:
        conns[i] = await _connect(
            flow,
            ip,
            port,
            server_name=host,
            ssl_context=ctx.ssl_context if https else None,
            tags=tags,
            tls_failures=tls_failures,
        )

    async with trio.open_nursery() as nursery:
        for i, ip in enumerate(usable):
            nursery.start_soon(attempt, i, ip)

    chosen = next((c for c in conns if c is not None), None)
    for c in conns:
        if c is not None and c is not chosen:
            await _aclose(c.stream)

    async with trio.open_nursery() as nursery:
        for ip, failure in tls_failures.items():
            if failure in _DIAG_FAILURES:
                nursery.start_soon(_sni_retry, flow, ip, port, tags)
        if chosen is None:
            return None
        result = await _get(flow, url, chosen, port, tags=tags)
        if result.failure in _DIAG_FAILURES and result.status == 0:
            nursery.start_soon(_host_retry, flow, url, chosen.ip, port, tags)
    if result.failure is None and 300 <= result.status < 400 and result.location:
        return result.location
    return None


async def _connect(
    flow: _Flow,
    ip: str,
    port: int,
    *,
    server_name: str,
    ssl_context: ssl.SSLContext | None,
    tags: list[str],
    tls_failures: dict[str, str] | None = None,
) -> _Conn | None:
    """One TCP connect to ``ip:port`` and, with ``ssl_context``, a TLS handshake on it."""
    timeouts = flow.ctx.config.timeouts
    txid = flow.trace.new_transaction_id()
    stream = await tcp.connect(
        flow.trace, ip, port, timeouts=timeouts, transaction_id=txid, tags=tags
    )
    if stream is None:
        return None
    if ssl_context is None:
        return _Conn(ip=ip, transaction_id=txid, stream=stream, alpn="")
    before = len(flow.trace.tls_handshakes)
    tls_stream = await tls.handshake(
        flow.trace,
        stream,
        address=join_endpoint(ip, port),
        server_name=server_name,
        ssl_context=ssl_context,
        timeouts=timeouts,
        transaction_id=txid,
        tags=tags,
    )
    if tls_stream is None:
        events = flow.trace.tls_handshakes[before:]
        if tls_failures is not None and events and events[0].failure:
            tls_failures[ip] = events[0].failure
        return None
    alpn = tls_stream.selected_alpn_protocol() or ""
    return _Conn(ip=ip, transaction_id=txid, stream=tls_stream, alpn=alpn)


async def _get(
    flow: _Flow,
    url: str,
    conn: _Conn,
    port: int,
    *,
    tags: list[str],
    headers: list[tuple[str, str]] | None = None,
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
            body_cap=ctx.config.body_cap,
            transaction_id=conn.transaction_id,
            tags=tags,
        )
    finally:
        await _aclose(conn.stream)


def _diag_tags(tags: list[str], name: str) -> list[str]:
    return [t for t in tags if t != "classic"] + [f"x_diag={name}"]


async def _sni_retry(flow: _Flow, ip: str, port: int, tags: list[str]) -> None:
    """Same address, innocuous SNI, no verification: does a ServerHello come back?"""
    ctx = flow.ctx
    conn = await _connect(
        flow,
        ip,
        port,
        server_name=ctx.innocuous_sni,
        ssl_context=ctx.diag_ssl_context,
        tags=_diag_tags(tags, "sni_retry"),
    )
    if conn is not None:
        await _aclose(conn.stream)


async def _host_retry(flow: _Flow, url: str, ip: str, port: int, tags: list[str]) -> None:
    """Same address, innocuous Host header (and SNI): is the reset tied to the name?"""
    ctx = flow.ctx
    parts = urlsplit(url)
    diag_tags = _diag_tags(tags, "host_retry")
    conn = await _connect(
        flow,
        ip,
        port,
        server_name=ctx.innocuous_sni,
        ssl_context=ctx.diag_ssl_context if parts.scheme == "https" else None,
        tags=diag_tags,
    )
    if conn is None:
        return
    netloc = ctx.innocuous_host if parts.port is None else f"{ctx.innocuous_host}:{parts.port}"
    await _get(flow, parts._replace(netloc=netloc).geturl(), conn, port, tags=diag_tags)


async def _aclose(stream: trio.abc.AsyncResource) -> None:
    """Close without waiting for the peer (a measured connection owes it no goodbye)."""
    with trio.CancelScope(shield=True):
        await trio.aclose_forcefully(stream)


def _assemble(url: str, flow: _Flow, *, started: datetime, runtime: float) -> dict[str, Any]:
    ctx = flow.ctx
    dumped = dump_events(flow.trace, names=(*EVENT_LISTS, "dns_duplicates"))
    dns_failure = None
    for q in dumped["queries"]:
        if "classic" in q.get("tags", []) and q.get("engine") == "getaddrinfo":
            dns_failure = q.get("failure")
            break
    test_keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": (ctx.udp_resolver or "").rsplit(":", 1)[0],
        "retries": None,
        "socksproxy": None,
        "queries": dumped["queries"],
        "tcp_connect": dumped["tcp_connect"],
        "tls_handshakes": dumped["tls_handshakes"],
        "requests": dumped["requests"],
        "network_events": dumped["network_events"],
        "x_dns_duplicate_responses": dumped["dns_duplicates"],
        "x_skipped_endpoints": flow.skipped,
        "x_public_ranges": public_ranges(ctx),
        "x_control_request": flow.control_request,
        "control": flow.control if flow.control is not None else {},
        "control_failure": flow.control_failure,
        "dns_experiment_failure": dns_failure,
        "x_failure": flow.failure,
        "x_failed_operation": flow.failed_operation,
    }
    return envelope(
        ctx,
        input=url,
        test_name=TEST_NAME,
        test_version=TEST_VERSION,
        started=started,
        runtime=runtime,
        test_keys=test_keys,
    )
