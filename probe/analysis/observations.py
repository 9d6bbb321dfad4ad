"""Measurement dict -> flat observations (pure, total).

Like ooni/data's observation tables and probe-cli's minipipeline: one row per DNS lookup, per
TCP/TLS endpoint (keyed by transaction id) and per HTTP round trip, each with the matching control
(test helper) facts beside it. Rules in :mod:`probe.analysis.rules` only look at these rows.

"Main flow" = what a classic Web Connectivity run would do: when the measurement uses tags (LTE
0.5, ours), depth-0 events tagged ``classic`` plus every later redirect hop; events tagged
``x_diag=...`` (our diagnostics) are never main flow. Untagged data (v0.4, MK) is all main flow.

The observation classes are plain slotted dataclasses, read-only by convention (nothing in
the analysis assigns to them): frozen dataclasses cost four times as much to build, and
``observe`` builds a dozen per measurement, on the batch's hot path. Their ``__init__`` is
written out (``init=False``): when the analysis is compiled (probe.native), mypyc compiles a
hand-written ``__init__`` but leaves the one ``dataclasses`` generates to the interpreter,
which cost a quarter of ``observe``. The same holds for the classes of ``context``,
``dnscheck``, ``httpdiff`` and ``rules.Hit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from probe.analysis.samples import StageSample, parse_baseline
from probe.analysis.urls import BAD_PORT, url_parts
from probe.analysis.values import (
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    decode_body,
    depth_of,
    failure_of,
    maybe_binary,
    maybe_binary_text,
    tag_value,
    tags_of,
)
from probe.netaddr import is_ip, join_endpoint, split_endpoint
from probe.vocabulary import unknown_failure

WEB = "web_connectivity"

#: per-process memo sizes: addresses and URLs repeat across the measurements of a batch
_CACHE = 1 << 16
#: a connect whose status says "no success" without a failure string
_NO_FAILURE_STRING: Final = unknown_failure("no failure string")
#: the control's status says the step failed, without a failure string
_CONTROL_SAYS_NO: Final = unknown_failure("control says no")
SYSTEM_ENGINES = frozenset({"getaddrinfo", "system", "golang_net_resolver", "go", "unknown", ""})


@dataclass(slots=True, init=False)
class DNSObs:
    ref: str
    hostname: str
    engine: str
    query_type: str
    depth: int
    main: bool
    failure: str | None
    addrs: tuple[str, ...]
    asns: tuple[int, ...]

    def __init__(
        self,
        ref: str,
        hostname: str,
        engine: str,
        query_type: str,
        depth: int,
        main: bool,
        failure: str | None,
        addrs: tuple[str, ...],
        asns: tuple[int, ...],
    ) -> None:
        self.ref = ref
        self.hostname = hostname
        self.engine = engine
        self.query_type = query_type
        self.depth = depth
        self.main = main
        self.failure = failure
        self.addrs = addrs
        self.asns = asns

    @property
    def system(self) -> bool:
        return self.engine in SYSTEM_ENGINES


@dataclass(slots=True, init=False)
class EndpointObs:
    """One TCP connect and the TLS handshake on it (same transaction id), with control facts."""

    address: str
    ip: str
    port: int
    depth: int
    main: bool
    diag: str | None
    fetch: bool | None
    transaction_id: int
    tcp_ref: str | None
    tcp_failure: str | None
    tls_ref: str | None
    tls_failure: str | None
    tls_server_name: str | None
    tls_no_verify: bool
    ctrl_tcp_seen: bool
    ctrl_tcp_failure: str | None
    ctrl_tls_seen: bool
    ctrl_tls_failure: str | None
    ctrl_tls_server_name: str | None
    #: durations (``t - t0``) of the connect and of the handshake; None when not recorded
    tcp_time: float | None
    tls_time: float | None

    def __init__(
        self,
        address: str,
        ip: str,
        port: int,
        depth: int,
        main: bool,
        diag: str | None,
        fetch: bool | None,
        transaction_id: int,
        tcp_ref: str | None,
        tcp_failure: str | None,
        tls_ref: str | None,
        tls_failure: str | None,
        tls_server_name: str | None,
        tls_no_verify: bool,
        ctrl_tcp_seen: bool,
        ctrl_tcp_failure: str | None,
        ctrl_tls_seen: bool,
        ctrl_tls_failure: str | None,
        ctrl_tls_server_name: str | None,
        tcp_time: float | None = None,
        tls_time: float | None = None,
    ) -> None:
        self.address = address
        self.ip = ip
        self.port = port
        self.depth = depth
        self.main = main
        self.diag = diag
        self.fetch = fetch
        self.transaction_id = transaction_id
        self.tcp_ref = tcp_ref
        self.tcp_failure = tcp_failure
        self.tls_ref = tls_ref
        self.tls_failure = tls_failure
        self.tls_server_name = tls_server_name
        self.tls_no_verify = tls_no_verify
        self.ctrl_tcp_seen = ctrl_tcp_seen
        self.ctrl_tcp_failure = ctrl_tcp_failure
        self.ctrl_tls_seen = ctrl_tls_seen
        self.ctrl_tls_failure = ctrl_tls_failure
        self.ctrl_tls_server_name = ctrl_tls_server_name
        self.tcp_time = tcp_time
        self.tls_time = tls_time

    @property
    def tcp_ok(self) -> bool:
        return self.tcp_ref is not None and self.tcp_failure is None

    @property
    def tls_ok(self) -> bool:
        return self.tls_ref is not None and self.tls_failure is None


@dataclass(slots=True, init=False)
class HTTPObs:
    ref: str
    index: int
    url: str
    host: str
    address: str
    depth: int
    main: bool
    diag: str | None
    transaction_id: int
    failure: str | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str
    body_length: int
    truncated: bool
    t0: float | None
    t: float | None
    samples: tuple[tuple[float, int], ...]  # (t, cumulative bytes), sorted by t

    def __init__(
        self,
        ref: str,
        index: int,
        url: str,
        host: str,
        address: str,
        depth: int,
        main: bool,
        diag: str | None,
        transaction_id: int,
        failure: str | None,
        status: int,
        headers: tuple[tuple[str, str], ...],
        body: str,
        body_length: int,
        truncated: bool,
        t0: float | None,
        t: float | None,
        samples: tuple[tuple[float, int], ...],
    ) -> None:
        self.ref = ref
        self.index = index
        self.url = url
        self.host = host
        self.address = address
        self.depth = depth
        self.main = main
        self.diag = diag
        self.transaction_id = transaction_id
        self.failure = failure
        self.status = status
        self.headers = headers
        self.body = body
        self.body_length = body_length
        self.truncated = truncated
        self.t0 = t0
        self.t = t
        self.samples = samples

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308)


@dataclass(slots=True, init=False)
class ControlObs:
    available: bool
    failure: str | None
    dns_failure: str | None
    dns_addrs: tuple[str, ...]
    dns_seen: bool
    http_seen: bool
    http_failure: str | None
    http_status: int
    http_body_length: int
    http_headers: tuple[tuple[str, str], ...]
    http_title: str
    transfer: tuple[int, float, float] | None  # body_length, t_first_byte, t_done
    ip_asn: dict[str, int]
    ip_flags: dict[str, int]
    #: the control's TLS handshakes, "ip:port" -> failure (None: it worked)
    tls: dict[str, str | None]
    #: ``x_transfer.t_connect`` / ``t_tls``: the control's own connect and handshake (seconds)
    transfer_connect: float | None
    transfer_tls: float | None

    def __init__(
        self,
        available: bool,
        failure: str | None,
        dns_failure: str | None,
        dns_addrs: tuple[str, ...],
        dns_seen: bool,
        http_seen: bool,
        http_failure: str | None,
        http_status: int,
        http_body_length: int,
        http_headers: tuple[tuple[str, str], ...],
        http_title: str,
        transfer: tuple[int, float, float] | None,
        ip_asn: dict[str, int],
        ip_flags: dict[str, int],
        tls: dict[str, str | None],
        transfer_connect: float | None,
        transfer_tls: float | None,
    ) -> None:
        self.available = available
        self.failure = failure
        self.dns_failure = dns_failure
        self.dns_addrs = dns_addrs
        self.dns_seen = dns_seen
        self.http_seen = http_seen
        self.http_failure = http_failure
        self.http_status = http_status
        self.http_body_length = http_body_length
        self.http_headers = http_headers
        self.http_title = http_title
        self.transfer = transfer
        self.ip_asn = ip_asn
        self.ip_flags = ip_flags
        self.tls = tls
        self.transfer_connect = transfer_connect
        self.transfer_tls = transfer_tls

    @property
    def http_ok(self) -> bool:
        return (
            self.available
            and self.http_seen
            and self.http_failure is None
            and (self.http_status > 0)
        )


@dataclass(slots=True, init=False)
class DuplicateObs:
    ref: str
    hostname: str
    query_type: str
    addrs: tuple[str, ...]
    first_ref: str | None
    first_addrs: tuple[str, ...]

    def __init__(
        self,
        ref: str,
        hostname: str,
        query_type: str,
        addrs: tuple[str, ...],
        first_ref: str | None,
        first_addrs: tuple[str, ...],
    ) -> None:
        self.ref = ref
        self.hostname = hostname
        self.query_type = query_type
        self.addrs = addrs
        self.first_ref = first_ref
        self.first_addrs = first_addrs


@dataclass(slots=True, init=False)
class Observations:
    usable: bool
    url: str
    scheme: str
    host: str
    port: int
    host_is_ip: bool
    probe_cc: str
    dns: tuple[DNSObs, ...]
    endpoints: tuple[EndpointObs, ...]
    http: tuple[HTTPObs, ...]
    control: ControlObs
    duplicates: tuple[DuplicateObs, ...]
    skipped: tuple[str, ...]
    control_failure: str | None
    #: ``test_keys.http_experiment_failure``: legacy (MK, 0.3) data has it without ``requests``
    legacy_http_failure: str | None
    #: ``test_keys.x_run_baseline`` samples (the other targets of the run); None: not recorded
    baseline: tuple[StageSample, ...] | None
    #: ``test_keys.x_nxdomain_canary.addresses``: what the probe's resolver answered, in this
    #: run, for a random name that does not exist (empty: an honest NXDOMAIN); None: not recorded
    canary_addrs: tuple[str, ...] | None

    def __init__(
        self,
        usable: bool,
        url: str,
        scheme: str,
        host: str,
        port: int,
        host_is_ip: bool,
        probe_cc: str,
        dns: tuple[DNSObs, ...],
        endpoints: tuple[EndpointObs, ...],
        http: tuple[HTTPObs, ...],
        control: ControlObs,
        duplicates: tuple[DuplicateObs, ...],
        skipped: tuple[str, ...],
        control_failure: str | None,
        legacy_http_failure: str | None,
        baseline: tuple[StageSample, ...] | None = None,
        canary_addrs: tuple[str, ...] | None = None,
    ) -> None:
        self.usable = usable
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.host_is_ip = host_is_ip
        self.probe_cc = probe_cc
        self.dns = dns
        self.endpoints = endpoints
        self.http = http
        self.control = control
        self.duplicates = duplicates
        self.skipped = skipped
        self.control_failure = control_failure
        self.legacy_http_failure = legacy_http_failure
        self.baseline = baseline
        self.canary_addrs = canary_addrs


@lru_cache(maxsize=_CACHE)
def _is_ip(text: str) -> bool:
    return is_ip(text)


def _answers(q: dict[str, Any]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    addrs: list[str] = []
    asns: list[int] = []
    for a in as_list(q.get("answers")):
        a = as_dict(a)
        ip = as_str(a.get("ipv4")) or as_str(a.get("ipv6"))
        if ip and _is_ip(ip) and ip not in addrs:
            addrs.append(ip)
            asn = as_int(a.get("asn"))
            if asn:
                asns.append(asn)
    return tuple(addrs), tuple(asns)


def _control(tk: dict[str, Any]) -> tuple[ControlObs, dict[str, Any], dict[str, Any]]:
    raw = tk.get("control")
    ctrl = as_dict(raw)
    cfail = failure_of(tk.get("control_failure"))
    dns = as_dict(ctrl.get("dns"))
    http = as_dict(ctrl.get("http_request"))
    headers = tuple(
        (str(k), v) for k, v in as_dict(http.get("headers")).items() if isinstance(v, str)
    )
    transfer = None
    xt = as_dict(http.get("x_transfer"))
    bl, tfb, td = (
        as_int(xt.get("body_length")),
        as_float(xt.get("t_first_byte")),
        as_float(xt.get("t_done")),
    )
    if bl is not None and tfb is not None and td is not None:
        transfer = (bl, tfb, td)
    tls_results: dict[str, str | None] = {}
    for ep, info in as_dict(ctrl.get("tls_handshake")).items():
        info = as_dict(info)
        fail = failure_of(info.get("failure"))
        if fail is None and info.get("status") is False:
            fail = _CONTROL_SAYS_NO
        tls_results[str(ep)] = fail
    asn: dict[str, int] = {}
    flags: dict[str, int] = {}
    for ip, info in as_dict(ctrl.get("ip_info")).items():
        info = as_dict(info)
        asn[str(ip)] = as_int(info.get("asn")) or 0
        flags[str(ip)] = as_int(info.get("flags")) or 0
    available = bool(ctrl) and cfail is None
    obs = ControlObs(
        available=available,
        failure=cfail,
        dns_failure=failure_of(dns.get("failure")),
        dns_addrs=tuple(a for a in as_list(dns.get("addrs")) if isinstance(a, str)),
        dns_seen=available and bool(dns),
        http_seen=available and bool(http),
        http_failure=failure_of(http.get("failure")),
        http_status=as_int(http.get("status_code")) or 0,
        http_body_length=as_int(http.get("body_length")) or 0,
        http_headers=headers,
        http_title=as_str(http.get("title")) or "",
        transfer=transfer,
        ip_asn=asn,
        ip_flags=flags,
        tls=tls_results,
        transfer_connect=_duration_field(xt.get("t_connect")),
        transfer_tls=_duration_field(xt.get("t_tls")),
    )
    return obs, as_dict(ctrl.get("tcp_connect")), as_dict(ctrl.get("tls_handshake"))


def _tagged(tk: dict[str, Any]) -> bool:
    """Whether any event carries the ``classic`` tag (LTE 0.5 and our own data)."""
    for key in ("queries", "tcp_connect", "tls_handshakes", "requests"):
        for e in as_list(tk.get(key)):
            tags = e.get("tags") if type(e) is dict else None
            if tags and type(tags) in (list, tuple) and "classic" in tags:
                return True
    return False


def _placement(tags: tuple[str, ...], tagged: bool) -> tuple[int, bool, str | None]:
    """(depth, main flow, x_diag) of an event: ``depth_of``, ``_is_main`` and the ``x_diag``
    tag in one pass (untagged events, all of v0.4 data, take the short way)."""
    if not tags:
        return 0, not tagged, None
    diag = tag_value(tags, "x_diag")
    depth = depth_of(tags)
    main = diag is None and (not tagged or "classic" in tags or depth > 0)
    return depth, main, diag


def _samples(tk: dict[str, Any]) -> dict[int, list[tuple[float, int]]]:
    out: dict[int, list[tuple[float, int]]] = {}
    for ev in as_list(tk.get("network_events")):
        ev = as_dict(ev)
        if ev.get("operation") != "bytes_received_cumulative":
            continue
        t, n, tid = (
            as_float(ev.get("t")),
            as_int(ev.get("num_bytes")),
            as_int(ev.get("transaction_id")),
        )
        if t is not None and n is not None and tid is not None:
            out.setdefault(tid, []).append((t, n))
    return out


def _headers(resp: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for item in as_list(resp.get("headers_list")):
        item = as_list(item)
        if len(item) == 2 and isinstance(item[0], str):
            pairs.append((item[0], maybe_binary_text(item[1])))
    if not pairs:
        for k, v in as_dict(resp.get("headers")).items():
            pairs.append((str(k), maybe_binary_text(v)))
    return tuple(pairs)


def observe(measurement: Mapping[str, Any]) -> Observations:
    """Flatten one measurement. Never raises on malformed input (``usable`` says if it helps)."""
    m = as_dict(measurement)
    tk = as_dict(m.get("test_keys"))
    control, ctcp, ctls = _control(tk)
    url = as_str(m.get("input")) or as_str(as_dict(tk.get("x_control_request")).get("http_request"))
    if not url:
        reqs = as_list(tk.get("requests"))
        oldest = as_dict(reqs[-1]) if reqs else {}
        url = as_str(as_dict(oldest.get("request")).get("url")) or ""
    scheme, host, port = _split_url(url)

    tagged = _tagged(tk)

    dns = []
    for i, q in enumerate(as_list(tk.get("queries"))):
        q = as_dict(q)
        depth, main, _diag = _placement(tags_of(q), tagged)
        addrs, asns = _answers(q)
        dns.append(
            DNSObs(
                f"queries[{i}]",
                as_str(q.get("hostname")) or "",
                as_str(q.get("engine")) or "",
                as_str(q.get("query_type")) or "",
                depth,
                main,
                failure_of(q.get("failure")),
                addrs,
                asns,
            )
        )

    tls_by_key: dict[tuple[int, str], tuple[int, dict[str, Any]]] = {}
    for i, h in enumerate(as_list(tk.get("tls_handshakes"))):
        h = as_dict(h)
        tls_key = (as_int(h.get("transaction_id")) or 0, as_str(h.get("address")) or "")
        tls_by_key.setdefault(tls_key, (i, h))
    endpoints = []
    used_tls: set[tuple[int, str]] = set()
    for i, c in enumerate(as_list(tk.get("tcp_connect"))):
        c = as_dict(c)
        ip, cport = as_str(c.get("ip")), as_int(c.get("port"))
        if ip is None or cport is None or not 0 <= cport < 65536 or not _is_ip(ip):
            continue
        addr = join_endpoint(ip, cport)
        tid = as_int(c.get("transaction_id")) or 0
        status = as_dict(c.get("status"))
        fail = failure_of(status.get("failure"))
        if fail is None and status.get("success") is False:
            fail = _NO_FAILURE_STRING
        tls_i, tls = tls_by_key.get((tid, addr), (None, {}))
        if tls_i is not None:
            used_tls.add((tid, addr))
        endpoints.append(
            _endpoint(
                addr,
                ip,
                port,
                tid,
                tags_of(c),
                tagged,
                f"tcp_connect[{i}]",
                fail,
                tls_i,
                tls,
                ctcp,
                ctls,
                c,
            )
        )
    for (tid, addr), (tls_i, tls) in tls_by_key.items():
        if (tid, addr) in used_tls or not addr:
            continue
        try:
            ip, tport = _split_endpoint(addr)
        except ValueError:
            continue
        endpoints.append(
            _endpoint(
                addr, ip, tport, tid, tags_of(tls), tagged, None, None, tls_i, tls, ctcp, ctls, {}
            )
        )

    samples = _samples(tk)
    http = []
    for i, r in enumerate(as_list(tk.get("requests"))):
        r = as_dict(r)
        depth, main, diag = _placement(tags_of(r), tagged)
        req, resp = as_dict(r.get("request")), as_dict(r.get("response"))
        rurl = as_str(req.get("url")) or ""
        headers = _headers(resp)
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        raw = maybe_binary(resp.get("body"))
        tid = as_int(r.get("transaction_id")) or 0
        http.append(
            HTTPObs(
                ref=f"requests[{i}]",
                index=i,
                url=rurl,
                host=_split_url(rurl)[1],
                address=as_str(r.get("address")) or "",
                depth=depth,
                main=main,
                diag=diag,
                transaction_id=tid,
                failure=failure_of(r.get("failure")),
                status=as_int(resp.get("code")) or 0,
                headers=headers,
                body=decode_body(raw, content_type=ctype),
                body_length=len(raw),
                truncated=resp.get("body_is_truncated") is True,
                t0=as_float(r.get("t0")),
                t=as_float(r.get("t")),
                samples=tuple(sorted(samples.get(tid, []))) if tid else (),
            )
        )

    dups = []
    for i, d in enumerate(as_list(tk.get("x_dns_duplicate_responses"))):
        d = as_dict(d)
        addrs, _ = _answers(d)
        hn, qt = as_str(d.get("hostname")) or "", as_str(d.get("query_type")) or ""
        engine = as_str(d.get("engine")) or "udp"
        first: DNSObs | None = None
        for row in dns:
            if row.engine == engine and row.hostname == hn and row.query_type == qt:
                first = row
                break
        dups.append(
            DuplicateObs(
                ref=f"x_dns_duplicate_responses[{i}]",
                hostname=hn,
                query_type=qt,
                addrs=addrs,
                first_ref=first.ref if first else None,
                first_addrs=first.addrs if first else (),
            )
        )

    return Observations(
        usable=bool(tk) and bool(host) and m.get("test_name", WEB) in (WEB, None),
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        host_is_ip=_is_ip(host),
        probe_cc=(as_str(m.get("probe_cc")) or "ZZ").upper(),
        dns=tuple(dns),
        endpoints=tuple(endpoints),
        http=tuple(http),
        control=control,
        duplicates=tuple(dups),
        skipped=tuple(s for s in as_list(tk.get("x_skipped_endpoints")) if isinstance(s, str)),
        control_failure=failure_of(tk.get("control_failure")),
        legacy_http_failure=failure_of(tk.get("http_experiment_failure")),
        baseline=parse_baseline(tk["x_run_baseline"]) if "x_run_baseline" in tk else None,
        canary_addrs=_canary(tk["x_nxdomain_canary"]) if "x_nxdomain_canary" in tk else None,
    )


def _endpoint(
    addr: str,
    ip: str,
    port: int,
    tid: int,
    tags: tuple[str, ...],
    tagged: bool,
    tcp_ref: str | None,
    tcp_failure: str | None,
    tls_i: int | None,
    tls: dict[str, Any],
    ctcp: dict[str, Any],
    ctls: dict[str, Any],
    tcp_event: dict[str, Any],
) -> EndpointObs:
    fetch = tag_value(tags, "fetch_body") if tags else None
    depth, main, diag = _placement(tags, tagged)
    ct, cs = as_dict(ctcp.get(addr)), as_dict(ctls.get(addr))
    return EndpointObs(
        address=addr,
        ip=ip,
        port=port,
        depth=depth,
        main=main,
        diag=diag,
        fetch=None if fetch is None else fetch == "true",
        transaction_id=tid,
        tcp_ref=tcp_ref,
        tcp_failure=tcp_failure,
        tls_ref=None if tls_i is None else f"tls_handshakes[{tls_i}]",
        tls_failure=failure_of(tls.get("failure")),
        tls_server_name=as_str(tls.get("server_name")),
        tls_no_verify=tls.get("no_tls_verify") is True,
        ctrl_tcp_seen=bool(ct),
        ctrl_tcp_failure=failure_of(ct.get("failure"))
        or (_CONTROL_SAYS_NO if ct and ct.get("status") is False else None),
        ctrl_tls_seen=bool(cs),
        ctrl_tls_failure=failure_of(cs.get("failure"))
        or (_CONTROL_SAYS_NO if cs and cs.get("status") is False else None),
        ctrl_tls_server_name=as_str(cs.get("server_name")),
        tcp_time=_duration(tcp_event),
        tls_time=_duration(tls) if tls else None,
    )


def _duration(event: dict[str, Any]) -> float | None:
    """``t - t0`` of an event, when both are recorded and ordered."""
    t0, t = as_float(event.get("t0")), as_float(event.get("t"))
    if t0 is None or t is None or t < t0:
        return None
    return t - t0


def _duration_field(value: object) -> float | None:
    f = as_float(value)
    return f if f is not None and f >= 0.0 else None


def _split_endpoint(addr: str) -> tuple[str, int]:
    """An ``ip:port`` endpoint (the host must be an address). ValueError otherwise."""
    host, port = split_endpoint(addr)
    if not _is_ip(host):
        raise ValueError(addr)
    return host, port


@lru_cache(maxsize=_CACHE)
def _split_url(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case IDNA host, port) of a URL; ("", "", 0) when unusable."""
    try:
        scheme, hostname, port = url_parts(url.strip())
    except (ValueError, TypeError):
        return "", "", 0
    if port == BAD_PORT:
        return "", "", 0
    scheme = scheme.lower()
    host = (hostname or "").rstrip(".")
    if host and not host.isascii() and not _is_ip(host):
        # the idna codec is slow; for an ASCII name it would only lower-case it
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    host = host.lower()
    default = {"http": 80, "https": 443}.get(scheme, 0)
    return scheme, host, port or default


def _canary(raw: object) -> tuple[str, ...] | None:
    """The addresses of ``x_nxdomain_canary`` (see probe.runfacts); None when unusable."""
    d = as_dict(raw)
    if as_int(d.get("version")) != 1 or not isinstance(d.get("addresses"), list):
        return None
    return tuple(a for a in as_list(d.get("addresses")) if isinstance(a, str) and _is_ip(a))
