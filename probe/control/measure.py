"""The test helper's own measurement of a control request (reference/ooni-format.md 10.2).

Steps: resolve the URL's host (getaddrinfo); form the union of the probe's and the TH's
addresses; connect to every *allowed* address on the ports of the URL (443 for https, both 80
and 443 for http without a port), TLS on 443 with SNI = host; concurrently fetch the URL
following redirects within a 15 s budget. The fetch resolves every hop itself and connects only
to addresses the :class:`~probe.control.safety.AddressPolicy` allows (the address is pinned:
no HTTP client ever resolves a name again), so neither DNS nor a redirect can steer the TH into
a private network. Refused addresses are flagged bogon (4) in ``ip_info`` and never contacted.

Everything is measured with the probe's own stages on a throwaway :class:`probe.trace.Trace`
(through ``settings.network``) and folded into the TH answer from the results the stages
return: DNS/TCP/HTTP failures in the TH's legacy vocabulary, TLS failures modern, as OONI's TH
does. ``http_request.x_transfer`` (our extension) gives the final
response's ``body_length`` and the seconds from the start of its request to the first response
bytes (``t_first_byte``) and to the end of the body (``t_done``), and the durations of the TCP
connect (``t_connect``) and TLS handshake (``t_tls``, null over cleartext) of the connection
that carried it: the throttling analysis compares the probe's stage times with these.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from probe.config import Timeouts
from probe.control import protocol as p
from probe.control.safety import AddressPolicy
from probe.net import TRIO, Network, close_now
from probe.netaddr import join_endpoint, parse_ip, split_endpoint
from probe.stages import dns, http, tcp, tls
from probe.stages.result import StageResult
from probe.trace import Trace
from probe.vocabulary import Failure, THFailure

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class MeasureSettings:
    """How the TH measures; one object per server."""

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    #: trust roots for the TH's own TLS (certifi plus the operator's --ca-file)
    ssl_context: ssl.SSLContext = field(default_factory=lambda: tls.make_ssl_context())
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: the whole fetch, every redirect included (OONI: 15 s)
    fetch_budget: float = 15.0
    body_cap: int = 1 << 24
    max_redirects: int = 10
    #: most distinct addresses measured for one request
    max_addresses: int = 32
    #: connections (TCP + TLS) in flight for one request
    parallelism: int = 8
    #: the port on which endpoints also get a TLS handshake (OONI: 443; tests use another)
    tls_port: int = 443
    network: Network = TRIO


async def measure(target: p.Target, *, settings: MeasureSettings) -> dict[str, Any]:
    """The TH response for ``target`` as a JSON-ready dict."""
    trace = Trace()
    resolved = await dns.lookup_getaddrinfo(
        trace, target.host, timeouts=settings.timeouts, net=settings.network
    )
    th_ips = [str(parse_ip(a) or a) for a in resolved.addresses]
    union = list(dict.fromkeys([*target.probe_ips, *th_ips]))[: settings.max_addresses]
    allowed = [ip for ip in union if settings.policy.allowed(ip)]

    tcp_results: dict[str, dict[str, Any]] = {}
    tls_results: dict[str, dict[str, Any]] = {}
    fetched: dict[str, Any] = {}
    limiter = trio.CapacityLimiter(settings.parallelism)
    async with trio.open_nursery() as nursery:
        for ip in allowed:
            for port in target.ports:
                nursery.start_soon(
                    _tcp_tls, trace, target.host, ip, port, settings, limiter,
                    tcp_results, tls_results,
                )  # fmt: skip
        nursery.start_soon(_fetch_into, fetched, trace, target, resolved, settings)

    valid_ips = {p_ip for ep, r in tls_results.items() if r["status"] for p_ip in [_ep_ip(ep)]}
    ip_info: dict[str, dict[str, int]] = {}
    for ip in union:
        flags = 0
        flags |= p.FLAG_RESOLVED_BY_PROBE if ip in target.probe_ips else 0
        flags |= p.FLAG_RESOLVED_BY_TH if ip in th_ips else 0
        flags |= p.FLAG_BOGON if ip not in allowed else 0
        flags |= p.FLAG_VALID_FOR_DOMAIN if ip in valid_ips else 0
        ip_info[ip] = {"asn": 0, "flags": flags}
    return {
        "tcp_connect": dict(sorted(tcp_results.items())),
        "tls_handshake": dict(sorted(tls_results.items())),
        "quic_handshake": {},
        "http_request": fetched,
        "http3_request": None,
        "dns": {"failure": p.dns_failure(resolved.failure), "addrs": th_ips},
        "ip_info": ip_info,
    }


def _ep_ip(endpoint: str) -> str:
    return split_endpoint(endpoint)[0]


async def _tcp_tls(
    trace: Trace,
    host: str,
    ip: str,
    port: int,
    settings: MeasureSettings,
    limiter: trio.CapacityLimiter,
    tcp_results: dict[str, dict[str, Any]],
    tls_results: dict[str, dict[str, Any]],
) -> None:
    endpoint = join_endpoint(ip, port)
    async with limiter:
        tid = trace.new_transaction_id()
        connected = await tcp.connect(
            trace, ip, port, timeouts=settings.timeouts, transaction_id=tid, net=settings.network
        )
        stream = connected.value
        tcp_results[endpoint] = {
            "status": stream is not None,
            "failure": p.tcp_failure(connected.failure),
        }
        if stream is None:
            return
        if port != settings.tls_port:
            await stream.aclose()
            return
        handshake = await _handshake(trace, stream, endpoint, host, settings, tid)
        tls_results[endpoint] = {
            "server_name": host,
            "status": handshake.ok,
            "failure": handshake.failure,
        }
        if handshake.value is not None:
            await close_now(handshake.value)


# --- the fetch ---------------------------------------------------------------------------


async def _fetch_into(
    out: dict[str, Any],
    trace: Trace,
    target: p.Target,
    first: dns.DNSResult,
    settings: MeasureSettings,
) -> None:
    result = p.failed_http_request(Failure.GENERIC_TIMEOUT_ERROR.value)
    with trio.move_on_after(settings.fetch_budget):
        result = await _fetch(trace, target, first, settings)
    out.update(result)


class _HopFailed(Exception):
    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


async def _fetch(
    trace: Trace, target: p.Target, first: dns.DNSResult, settings: MeasureSettings
) -> dict[str, Any]:
    url = target.url
    cookies: dict[str, dict[str, str]] = {}
    resolved: dns.DNSResult | None = first
    for _depth in range(settings.max_redirects + 1):
        try:
            result, transfer = await _hop(trace, url, resolved, target.headers, cookies, settings)
        except _HopFailed as exc:
            return p.failed_http_request(p.http_failure(exc.failure) or p.UNKNOWN_ERROR)
        resolved = None
        if result.status in REDIRECT_STATUSES and result.location:
            url = urllib.parse.urljoin(url, result.location)
            continue
        body = _decoded_body(result)
        return {
            "body_length": len(body),
            "discovered_h3_endpoint": "",
            "failure": None,
            "title": p.extract_title(body),
            "headers": p.single_value_headers(result.headers),
            "status_code": result.status,
            "x_transfer": transfer,
        }
    return p.failed_http_request(p.UNKNOWN_ERROR)  # too many redirects


def _decoded_body(result: http.Response) -> bytes:
    """The body with its Content-Encoding undone, as the probe publishes it (probe.privacy), so
    that body lengths and titles compare like with like; the raw body when it cannot be."""
    from probe.privacy.content import codings_of, decode_body

    codings = codings_of(result.headers)
    if not codings:
        return result.body
    decoded = decode_body(result.body, codings, cap=max(len(result.body), 1 << 19))
    return result.body if decoded.problem is not None else decoded.data


async def _hop(
    trace: Trace,
    url: str,
    resolved: dns.DNSResult | None,
    headers: Sequence[tuple[str, str]],
    cookies: dict[str, dict[str, str]],
    settings: MeasureSettings,
) -> tuple[http.Response, dict[str, Any]]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise _HopFailed(p.UNKNOWN_ERROR) from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host:
        raise _HopFailed(p.UNKNOWN_ERROR)
    port = port or (443 if scheme == "https" else 80)
    if resolved is None:
        resolved = await dns.lookup_getaddrinfo(
            trace, host, timeouts=settings.timeouts, net=settings.network
        )
    if resolved.failure is not None:
        raise _HopFailed(resolved.failure)
    addresses = [a for a in resolved.addresses if settings.policy.allowed(a)]
    if not addresses:
        raise _HopFailed(Failure.DNS_BOGON_ERROR.value)
    failure: str | None = None
    for ip in addresses:
        tid = trace.new_transaction_id()
        connected = await tcp.connect(
            trace, ip, port, timeouts=settings.timeouts, transaction_id=tid, net=settings.network
        )
        if connected.value is None:
            failure = connected.failure
            continue
        return await _get_on(
            trace, connected, url, ip, port, scheme, host, headers, cookies, settings, tid
        )
    raise _HopFailed(failure or THFailure.UNKNOWN_ERROR.value)


async def _get_on(
    trace: Trace,
    connected: tcp.TCPResult,
    url: str,
    ip: str,
    port: int,
    scheme: str,
    host: str,
    headers: Sequence[tuple[str, str]],
    cookies: dict[str, dict[str, str]],
    settings: MeasureSettings,
    tid: int,
) -> tuple[http.Response, dict[str, Any]]:
    address = join_endpoint(ip, port)
    assert connected.value is not None
    conn: trio.abc.Stream = connected.value
    alpn = ""
    handshake: tls.TLSResult | None = None
    if scheme == "https":
        handshake = await _handshake(trace, connected.value, address, host, settings, tid)
        if handshake.value is None:
            raise _HopFailed(handshake.failure or THFailure.UNKNOWN_ERROR.value)
        conn, alpn = handshake.value, "http/1.1"
    jar = cookies.setdefault(host.lower(), {})
    request_headers = list(headers)
    if jar:
        request_headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in jar.items())))
    try:
        result = await http.get(
            trace,
            conn,
            url=url,
            address=address,
            alpn=alpn,
            headers=request_headers,
            timeouts=settings.timeouts,
            body_cap=settings.body_cap,
            transaction_id=tid,
        )
    finally:
        await close_now(conn)
    if result.failure is not None:
        raise _HopFailed(result.failure)
    _remember_cookies(jar, result.value.headers)
    return result.value, _transfer(result, connect=connected, tls_result=handshake)


def _remember_cookies(jar: dict[str, str], headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if name.lower() != "set-cookie" or len(jar) >= 50:
            continue
        pair = value.split(";", 1)[0]
        key, sep, val = pair.partition("=")
        if sep and key.strip() and len(pair) <= 4096:
            jar[key.strip()] = val.strip()


def _transfer(
    result: http.HTTPResult, *, connect: StageResult[Any], tls_result: StageResult[Any] | None
) -> dict[str, Any]:
    """Timing of the final transfer: request start, first response bytes, body end; the
    durations of the connect and of the TLS handshake (None over cleartext) that carried it."""
    first = result.value.t_first_byte
    if first is None:
        first = result.t
    return {
        "body_length": len(result.value.body),
        "t_first_byte": round(max(0.0, first - result.t0), 6),
        "t_done": round(max(0.0, result.t - result.t0), 6),
        "t_connect": _duration(connect),
        "t_tls": None if tls_result is None else _duration(tls_result),
    }


def _duration(result: StageResult[Any]) -> float:
    return round(max(0.0, result.t - result.t0), 6)


async def _handshake(
    trace: Trace,
    stream: trio.abc.Stream,
    address: str,
    host: str,
    settings: MeasureSettings,
    tid: int,
) -> tls.TLSResult:
    """The TH's TLS handshake on ``stream`` (SNI = the URL's host, the helper's trust store)."""
    return await tls.handshake(
        trace,
        stream,
        address=address,
        server_name=host,
        ssl_context=settings.ssl_context,
        timeouts=settings.timeouts,
        transaction_id=tid,
        net=settings.network,
    )
