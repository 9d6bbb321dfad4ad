"""The verdict rules, as data: stable ids, first match wins, one version for the whole table.

Each :class:`Rule` names an outcome (``stage/outcome``, vocabulary in docs/verdicts.md), the OONI
classic ``blocking``/``accessible`` pair it implies, an evidence level and a predicate over the
:class:`~probe.analysis.context.Context`. A predicate returns a :class:`Hit` (the references of
the facts it used) or None. A rule's meaning is never changed in place: change it under a new id
and bump :data:`RULES_VERSION` (:data:`RETIRED` lists the ids that no longer fire, and why).

Evidence levels (never an overloaded zero): ``local`` needs no control (injected DNS reply,
fingerprinted blockpage, an innocuous-SNI retry that works); ``control`` compares with the control
that succeeded on the same thing; ``none`` is an honest "cannot tell".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from probe.analysis.context import Context
from probe.analysis.transfer import is_throttled
from probe.netaddr import endpoint_host, parse_ip
from probe.vocabulary import (
    BAD_REDIRECT,
    CERTIFICATE,
    EOF,
    REFUSED,
    RESET,
    TIMEOUT,
    UNREACHABLE,
    Stage,
)
from probe.vocabulary import NXDOMAIN as NXDOMAIN_FAILURES
from probe.vocabulary import Evidence as E
from probe.vocabulary import Outcome as O

RULES_VERSION = "2026.12.1"


#: read-only by convention, not frozen, with a written-out ``__init__``: compiled, it is
#: native code (see probe.analysis.observations)
@dataclass(slots=True, init=False)
class Hit:
    evidence: tuple[str, ...]
    failure: str | None
    fingerprint: str | None

    def __init__(
        self,
        evidence: tuple[str, ...],
        failure: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.evidence = evidence
        self.failure = failure
        self.fingerprint = fingerprint


Blocking = str | bool | None

#: ids that fired in earlier versions and never will again (a rule's meaning is never changed
#: in place): id -> (last version that had it, what replaced it)
RETIRED: dict[str, tuple[str, str]] = {
    "tcp.refused": (
        "2026.11.1",
        "tcp.syn_refused: the same facts, now called tcp/refused (tcp/reset was also the app "
        "tests' word for a reset connection attempt: one word, one meaning)",
    ),
}


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    outcome: str
    blocking: Blocking
    accessible: bool | None
    evidence: str  # an Evidence level
    predicate: Callable[[Context], Hit | None]
    comment: str


# ------------------------------------------------------------------------------- predicates


def _unusable(ctx: Context) -> Hit | None:
    return None if ctx.obs.usable else Hit(())


def _injected(ctx: Context) -> Hit | None:
    for d in ctx.obs.duplicates:
        if d.hostname.rstrip(".").lower() != ctx.obs.host or d.first_ref is None:
            continue
        if set(d.addrs) != set(d.first_addrs):
            return Hit((d.first_ref, d.ref))
    return None


def _dns_blockpage_ip(ctx: Context) -> Hit | None:
    if ctx.dns_hit is None:
        return None
    q, _, fp = ctx.dns_hit
    return Hit((q.ref,), fingerprint=fp.fid)


def _blockpage(*, redirect: bool) -> Callable[[Context], Hit | None]:
    def pred(ctx: Context) -> Hit | None:
        h = ctx.page_hit
        if h is None or (h.via_redirect or h.in_location) != redirect:
            return None
        return Hit((h.http.ref,), fingerprint=h.fingerprint.fid)

    return pred


def _dns_to_blockpage(ctx: Context) -> Hit | None:
    h, d = ctx.page_hit, ctx.dns
    if h is None or d.consistency != "inconsistent":
        return None
    ip = endpoint_host(h.http.address)
    if ip not in d.unexplained:
        return None
    return Hit(tuple(q.ref for q in d.lookups) + (h.http.ref,), fingerprint=h.fingerprint.fid)


def _sni_diag(kinds: frozenset[str], *, diag_ok: bool) -> Callable[[Context], Hit | None]:
    def pred(ctx: Context) -> Hit | None:
        s = ctx.step
        if s.kind != "tls" or s.failure not in kinds:
            return None
        ips = {e.ip for e in s.endpoints}
        diags = [
            e for e in ctx.obs.endpoints if e.diag == "sni_retry" and e.ip in ips and e.tls_ref
        ]
        if not diags:
            return None
        if diag_ok != any(e.tls_ok for e in diags):
            return None
        return Hit(s.refs + tuple(e.tls_ref for e in diags if e.tls_ref), failure=s.failure)

    return pred


def _host_diag(kinds: frozenset[str], *, diag_ok: bool) -> Callable[[Context], Hit | None]:
    def pred(ctx: Context) -> Hit | None:
        s = ctx.step
        if s.kind != "http" or s.failure not in kinds or s.http is None:
            return None
        diags = [h for h in ctx.obs.http if h.diag == "host_retry" and h.address == s.http.address]
        if not diags:
            return None
        if diag_ok != any(h.failure is None and h.status > 0 for h in diags):
            return None
        return Hit(s.refs + tuple(h.ref for h in diags), failure=s.failure)

    return pred


def _dns_failed(nx: bool) -> Callable[[Context], Hit | None]:
    def pred(ctx: Context) -> Hit | None:
        d = ctx.dns
        if d.reason != "unexpected_failure" or (d.failure in NXDOMAIN_FAILURES) != nx:
            return None
        return Hit(tuple(q.ref for q in d.lookups), failure=d.failure)

    return pred


def _dns_both_failed(ctx: Context) -> Hit | None:
    d = ctx.dns
    if d.reason != "both_failed":
        return None
    return Hit(tuple(q.ref for q in d.lookups), failure=d.failure)


def _dns_bogon(ctx: Context) -> Hit | None:
    d = ctx.dns
    if d.consistency != "inconsistent" or not d.bogons:
        return None
    return Hit(tuple(q.ref for q in d.lookups if set(q.addrs) & set(d.bogons)))


def _dns_both_bogon(ctx: Context) -> Hit | None:
    d = ctx.dns
    return Hit(tuple(q.ref for q in d.lookups)) if d.reason == "both_bogon" else None


def _throttled(ctx: Context) -> Hit | None:
    if not ctx.obs.control.available:
        return None
    for h in ctx.obs.http:
        if h.main and h.samples and is_throttled(h, ctx.obs.control) is not None:
            return Hit((h.ref, "control.http_request.x_transfer"), failure=h.failure)
    return None


def _final_ok(ctx: Context) -> bool:
    f = ctx.final
    return (
        f is not None
        and f.depth == ctx.depth
        and f.failure is None
        and f.status > 0
        and not f.is_redirect
    )


def _ok_https(ctx: Context) -> Hit | None:
    f = ctx.final
    if f is None or not _final_ok(ctx) or not f.url.lower().startswith("https://"):
        return None
    return Hit((f.ref,))


def _server_error(ctx: Context) -> Hit | None:
    f, c = ctx.final, ctx.obs.control
    if f is None or not _final_ok(ctx) or f.status < 500 or not c.http_seen:
        return None
    return Hit((f.ref, "control.http_request")) if c.http_status >= 500 else None


def _ok_http(ctx: Context) -> Hit | None:
    f = ctx.final
    if f is None or not _final_ok(ctx) or not ctx.obs.control.http_ok:
        return None
    return None if ctx.comparison.has_diff else Hit((f.ref, "control.http_request"))


def _dns_unexpected(ctx: Context) -> Hit | None:
    d = ctx.dns
    if d.consistency != "inconsistent":
        return None
    return Hit(tuple(q.ref for q in d.lookups))


def _benign_page(ctx: Context) -> Hit | None:
    f = ctx.final
    if f is None or not _final_ok(ctx) or ctx.final_false_positive is None:
        return None
    return Hit((f.ref,), fingerprint=ctx.final_false_positive.fid)


def _no_control(ctx: Context) -> Hit | None:
    return None if ctx.obs.control.available else Hit(("control_failure",))


def _no_ipv6(ctx: Context) -> Hit | None:
    s = ctx.step
    if s.kind != "tcp" or not s.endpoints:
        return None
    for e in s.endpoints:
        addr = parse_ip(e.ip)
        if addr is None or addr.version != 6 or e.tcp_failure not in UNREACHABLE:
            return None
    return Hit(s.refs, failure=s.failure)


def _step(
    kinds: frozenset[str] | None, stages: frozenset[str], *, control_ok: bool, status: bool = False
) -> Callable[[Context], Hit | None]:
    """The failing step is one of ``stages`` with a failure in ``kinds`` (None: any)."""

    def pred(ctx: Context) -> Hit | None:
        s = ctx.step
        if s.kind not in stages or s.failure is None or s.control_ok is not control_ok:
            return None
        if kinds is not None and s.failure not in kinds:
            return None
        if status and (s.http is None or s.http.status <= 0):
            return None
        return Hit(s.refs + ("control",), failure=s.failure)

    return pred


def _http_diff(ctx: Context) -> Hit | None:
    f = ctx.final
    if f is None or not _final_ok(ctx) or not ctx.obs.control.http_ok:
        return None
    return Hit((f.ref, "control.http_request")) if ctx.comparison.has_diff else None


def _always(ctx: Context) -> Hit | None:
    return Hit(())


# ----------------------------------------------------------------------------------- table

_DNS, _TCP = frozenset({Stage.DNS.value}), frozenset({Stage.TCP.value})
_TLS, _H = frozenset({Stage.TLS.value}), frozenset({Stage.HTTP.value})
_T, _S = _TCP | _H, _TLS | _H
_ANY = _DNS | _TCP | _TLS | _H

RULES: tuple[Rule, ...] = (
    Rule("input.unusable", O.UNKNOWN_UNUSABLE_INPUT, None, None, E.NONE, _unusable,
         "no test_keys or no URL host: nothing to judge"),
    Rule("dns.injected_duplicate", O.DNS_INJECTED, "dns", False, E.LOCAL, _injected,
         "a second UDP reply for the same query carried different answers: on-path injection"),
    Rule("dns.blockpage_ip", O.DNS_BLOCKPAGE_IP, "dns", False, E.LOCAL, _dns_blockpage_ip,
         "a main-flow DNS answer is a fingerprinted blockpage address"),
    Rule("dns.unexpected_address_blockpage", O.DNS_BLOCKPAGE_IP, "dns", False, E.LOCAL,
         _dns_to_blockpage, "the DNS answer the control never saw served a fingerprinted "
         "blockpage: the DNS lie is the cause"),
    Rule("http.redirect_to_blockpage", O.HTTP_REDIRECT_TO_BLOCKPAGE, "http-diff", False, E.LOCAL,
         _blockpage(redirect=True),
         "a Location header, or the page reached through a cross-host redirect, is fingerprinted"),
    Rule("http.blockpage", O.HTTP_BLOCKPAGE, "http-diff", False, E.LOCAL,
         _blockpage(redirect=False), "a response body/header matches a blockpage fingerprint "
         "and no false-positive fingerprint"),
    Rule("tls.sni_diag_reset", O.TLS_RESET, "http-failure", False, E.LOCAL,
         _sni_diag(RESET | EOF, diag_ok=True),
         "real SNI reset/closed after the ClientHello, innocuous SNI to the same IP got through"),
    Rule("tls.sni_diag_timeout", O.TLS_TIMEOUT, "http-failure", False, E.LOCAL,
         _sni_diag(TIMEOUT, diag_ok=True),
         "real SNI timed out after the ClientHello, innocuous SNI to the same IP got through"),
    Rule("tcp.ip_blocked_sni_diag", O.TCP_IP_BLOCKED, "tcp_ip", False, E.LOCAL,
         _sni_diag(RESET | EOF | TIMEOUT, diag_ok=False),
         "the innocuous-SNI handshake to the same IP failed too: the address is blocked"),
    Rule("http.throttled", O.HTTP_THROTTLED, "http-failure", False, E.CONTROL, _throttled,
         "body goodput under 10% of the control's, under 256 kbit/s, flat, and slow/incomplete"),
    Rule("http.host_diag_reset", O.HTTP_RESET, "http-failure", False, E.LOCAL,
         _host_diag(RESET | EOF, diag_ok=True),
         "request reset/closed, the same request with an innocuous Host got a response"),
    Rule("http.host_diag_timeout", O.HTTP_TIMEOUT, "http-failure", False, E.LOCAL,
         _host_diag(TIMEOUT, diag_ok=True),
         "request timed out, the same request with an innocuous Host got a response"),
    Rule("tcp.ip_blocked_host_diag", O.TCP_IP_BLOCKED, "tcp_ip", False, E.LOCAL,
         _host_diag(RESET | EOF | TIMEOUT, diag_ok=False),
         "the innocuous-Host request to the same address failed too"),
    Rule("dns.nxdomain", O.DNS_NXDOMAIN, "dns", False, E.CONTROL, _dns_failed(True),
         "probe NXDOMAIN (or Android no-data) while the control resolved addresses"),
    Rule("dns.failure", O.DNS_FAILURE, "dns", False, E.CONTROL, _dns_failed(False),
         "other probe DNS failure while the control resolved addresses"),
    Rule("down.dns", O.DOWN_EVERYWHERE, False, False, E.CONTROL, _dns_both_failed,
         "the probe and the control both failed to resolve (or both got no address)"),
    Rule("dns.bogon", O.DNS_BOGON, "dns", False, E.CONTROL, _dns_bogon,
         "the resolver answered a bogon the control did not see"),
    Rule("down.dns_bogon_everywhere", O.DOWN_EVERYWHERE, False, False, E.CONTROL, _dns_both_bogon,
         "the name resolves to bogons for the control too: misconfiguration, not censorship"),
    Rule("ok.https", O.OK, False, True, E.LOCAL, _ok_https,
         "final response over validated TLS: the network delivered the server's answer"),
    Rule("down.server_error", O.DOWN_SERVER_ERROR, False, False, E.CONTROL, _server_error,
         "the probe got a 5xx and so did the control"),
    Rule("ok.http_matches_control", O.OK, False, True, E.CONTROL, _ok_http,
         "final cleartext response matches the control (OONI's HTTP-diff rule)"),
    Rule("dns.unexpected_address", O.DNS_UNEXPECTED_ADDRESS, "dns", False, E.CONTROL,
         _dns_unexpected, "answers the control never saw, not in its ASNs, no validated TLS, "
         "and the fetch did not give the control's page"),
    Rule("http.benign_page", O.HTTP_BENIGN_PAGE, False, True, E.LOCAL, _benign_page,
         "the differing page is a known false positive (CDN challenge, default page...)"),
    Rule("unknown.control_unavailable", O.UNKNOWN_CONTROL_UNAVAILABLE, None, None, E.NONE,
         _no_control, "no control, and no local evidence decides"),
    Rule("unknown.probe_no_ipv6", O.UNKNOWN_PROBE_NO_IPV6, None, None, E.NONE, _no_ipv6,
         "only IPv6 endpoints failed as unreachable: the probe's network lacks IPv6"),
    Rule("dns.later_hop_nxdomain", O.DNS_NXDOMAIN, "dns", False, E.CONTROL,
         _step(NXDOMAIN_FAILURES, _DNS, control_ok=True),
         "a redirect target did not resolve; the control followed the redirects"),
    Rule("dns.later_hop_failure", O.DNS_FAILURE, "dns", False, E.CONTROL,
         _step(None, _DNS, control_ok=True), "a redirect target failed to resolve"),
    Rule("tcp.timeout", O.TCP_TIMEOUT, "tcp_ip", False, E.CONTROL,
         _step(TIMEOUT, _TCP, control_ok=True),
         "TCP connect timed out while the control connected"),
    Rule("tcp.syn_refused", O.TCP_REFUSED, "tcp_ip", False, E.CONTROL,
         _step(REFUSED, _T, control_ok=True),
         "RST in reply to the SYN (connection_refused) while the control connected"),
    Rule("tcp.unreachable", O.TCP_ICMP_UNREACHABLE, "tcp_ip", False, E.CONTROL,
         _step(UNREACHABLE, _T, control_ok=True), "ICMP unreachable while the control connected"),
    Rule("tcp.other", O.TCP_FAILURE, "tcp_ip", False, E.CONTROL,
         _step(None, _TCP, control_ok=True), "other connect failure"),
    Rule("tls.reset", O.TLS_RESET, "http-failure", False, E.CONTROL,
         _step(RESET, _TLS, control_ok=True), "RST after the ClientHello; the control's "
         "handshake worked"),
    Rule("tls.timeout", O.TLS_TIMEOUT, "http-failure", False, E.CONTROL,
         _step(TIMEOUT, _TLS, control_ok=True), "handshake stalled after the ClientHello"),
    Rule("tls.eof", O.TLS_EOF, "http-failure", False, E.CONTROL,
         _step(EOF, _TLS, control_ok=True), "connection closed after the ClientHello"),
    Rule("tls.certificate", O.TLS_MITM_CERTIFICATE, "http-failure", False, E.CONTROL,
         _step(CERTIFICATE, _S, control_ok=True),
         "certificate rejected while the control's validated: interception or a fake server"),
    Rule("tls.other", O.TLS_FAILURE, "http-failure", False, E.CONTROL,
         _step(None, _TLS, control_ok=True), "other handshake failure"),
    Rule("http.reset", O.HTTP_RESET, "http-failure", False, E.CONTROL,
         _step(RESET, _H, control_ok=True), "RST after the request (Host/URL DPI)"),
    Rule("http.eof", O.HTTP_EOF, "http-failure", False, E.CONTROL,
         _step(EOF, _H, control_ok=True), "connection closed after the request"),
    Rule("http.body_timeout", O.HTTP_BODY_TIMEOUT, "http-failure", False, E.CONTROL,
         _step(TIMEOUT, _H, control_ok=True, status=True),
         "headers arrived, the body stalled; the control fetched it (no rate data to call it "
         "throttling)"),
    Rule("http.timeout", O.HTTP_TIMEOUT, "http-failure", False, E.CONTROL,
         _step(TIMEOUT, _H, control_ok=True), "no response to the request"),
    Rule("http.invalid_redirect", O.HTTP_INVALID_REDIRECT, "http-failure", False, E.CONTROL,
         _step(BAD_REDIRECT, _H, control_ok=True),
         "the probe got a redirect the control did not (its fetch of the same URL succeeded)"),
    Rule("http.other", O.HTTP_FAILURE, "http-failure", False, E.CONTROL,
         _step(None, _H, control_ok=True), "other round-trip failure"),
    Rule("down.step_failed_everywhere", O.DOWN_EVERYWHERE, False, False, E.CONTROL,
         _step(None, _ANY, control_ok=False), "the control failed on the same step"),
    Rule("http.diff", O.HTTP_DIFF, "http-diff", False, E.CONTROL, _http_diff,
         "page differs from the control's (OONI's HTTP-diff rule) and no fingerprint matched"),
    Rule("unknown.undetermined", O.UNKNOWN_UNDETERMINED, None, None, E.NONE, _always,
         "catch-all: the facts fit no rule above"),
)  # fmt: skip
