"""The verdict rules, as data: stable ids, first match wins, one version for the whole table.

Each :class:`Rule` names an outcome (``stage/outcome``, vocabulary in docs/verdicts.md), the OONI
classic ``blocking``/``accessible`` pair it implies, an evidence level and a predicate over the
:class:`~probe.analysis.context.Context`. A predicate returns a :class:`Hit` (the references of
the facts it used) or None. A rule's meaning is never changed in place: change it under a new id
and bump :data:`RULES_VERSION`.

Evidence levels (never an overloaded zero): ``local`` needs no control (injected DNS reply,
fingerprinted blockpage, an innocuous-SNI retry that works); ``control`` compares with the control
that succeeded on the same thing; ``none`` is an honest "cannot tell".

:data:`RETIRED` lists the ids that left the table, with the last version that had them, the
ids that replaced them and why: verdicts stored with an older :data:`RULES_VERSION` keep their
meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from probe.analysis.context import Context
from probe.analysis.dnscheck import control_unresolved
from probe.analysis.observations import HTTPObs
from probe.analysis.throttling import (
    baseline_vetoes,
    follow_up_goodput,
    latency_excess,
    slow_link,
)
from probe.analysis.transfer import is_throttled
from probe.netaddr import endpoint_host, parse_ip
from probe.vocabulary import (
    BAD_REDIRECT,
    CERTIFICATE,
    CONTROL_NXDOMAIN,
    EOF,
    REFUSED,
    RESET,
    TIMEOUT,
    UNREACHABLE,
    Stage,
    is_unknown_failure,
)
from probe.vocabulary import NXDOMAIN as NXDOMAIN_FAILURES
from probe.vocabulary import Evidence as E
from probe.vocabulary import Outcome as O

RULES_VERSION = "2026.12.2"


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


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    outcome: str
    blocking: Blocking
    accessible: bool | None
    evidence: str  # an Evidence level
    predicate: Callable[[Context], Hit | None]
    comment: str


@dataclass(frozen=True, slots=True)
class Retired:
    """A rule id that left the table: never reused, never given another meaning."""

    rule_id: str
    last_version: str  # the last RULES_VERSION whose table had it
    replaced_by: tuple[str, ...]
    reason: str


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


def _silent(h: HTTPObs) -> bool:
    """No byte of a response ever arrived on this round trip (no head, no progress sample)."""
    return h.status <= 0 and not any(n > 0 for _, n in h.samples)


def _ip_blocked_host_diag(ctx: Context) -> Hit | None:
    """The innocuous-Host request to the same address was reset or closed too, the server
    stayed silent on both connections, and the control fetched the page: only then is the
    address itself blocked. Without the control, a server that resets or stalls any request
    (whatever its Host) looks the same from the probe (issue 16, item 4); two silent timeouts
    look the same as a congested path (the lab's slow link showed it), so they are left to
    the timeout rules."""
    hit = _host_diag(RESET | EOF, diag_ok=False)(ctx)
    s, c = ctx.step, ctx.obs.control
    if hit is None or s.http is None or not c.http_ok:
        return None
    diags = [h for h in ctx.obs.http if h.diag == "host_retry" and h.address == s.http.address]
    if not _silent(s.http) or not all(_silent(h) for h in diags):
        return None
    return Hit(hit.evidence + ("control.http_request",), failure=hit.failure)


def _ip_blocked_sni_diag(ctx: Context) -> Hit | None:
    """The innocuous-SNI handshake to the same address was reset or closed too, and the control
    completed a handshake there (or fetched the page): the address is blocked, not the name.
    Two timeouts are left to the timeout rules, as for the Host retry."""
    hit = _sni_diag(RESET | EOF, diag_ok=False)(ctx)
    if hit is None:
        return None
    s, c = ctx.step, ctx.obs.control
    tried = [e for e in s.endpoints if e.ctrl_tls_seen]
    if tried:
        if any(e.ctrl_tls_failure is not None for e in tried):
            return None
        return Hit(hit.evidence + ("control.tls_handshake",), failure=hit.failure)
    if not c.http_ok:
        return None
    return Hit(hit.evidence + ("control.http_request",), failure=hit.failure)


def _dns_failed(nx: bool) -> Callable[[Context], Hit | None]:
    def pred(ctx: Context) -> Hit | None:
        d = ctx.dns
        if d.reason != "unexpected_failure" or (d.failure in NXDOMAIN_FAILURES) != nx:
            return None
        return Hit(tuple(q.ref for q in d.lookups), failure=d.failure)

    return pred


def _dns_control_no_address(ctx: Context) -> Hit | None:
    """The probe failed to resolve; the control's answer held a name (CNAME) but no address,
    and its own fetch failed: nobody resolved it (issue 16, item 1)."""
    d = ctx.dns
    if d.addrs or not d.lookups or d.failure is None or not control_unresolved(ctx.obs):
        return None
    refs = tuple(q.ref for q in d.lookups) + ("control.dns", "control.http_request")
    return Hit(refs, failure=d.failure)


def _dns_nxdomain_rewritten(ctx: Context) -> Hit | None:
    """The control got NXDOMAIN, and the probe's resolver answered an address it also gives,
    in this run, for a random name that cannot exist (``x_nxdomain_canary``): ISP NXDOMAIN
    rewriting (search pages), not censorship of this name. Without the canary the same facts
    fit a censor still answering a blockpage address for a dead domain on its list (OONI's
    ghostDNSBlocking*), so the DNS rules below decide (issue 16, item 2)."""
    d, c, canary = ctx.dns, ctx.obs.control, ctx.obs.canary_addrs
    if d.reason != "resolved_while_control_failed" or c.dns_failure not in CONTROL_NXDOMAIN:
        return None
    if not canary or not set(d.addrs) & set(canary):
        return None
    return Hit(tuple(q.ref for q in d.lookups) + ("control.dns", "x_nxdomain_canary"))


def _tls_failed_alike(ctx: Context) -> Hit | None:
    """Every handshake of the probe failed with the same failure as the control's own
    handshakes at the addresses the control resolved: the site's TLS is broken for everyone,
    and the probe's other addresses (a CDN's) are not a DNS lie (issue 16, item 2)."""
    s, c = ctx.step, ctx.obs.control
    if s.kind != "tls" or s.failure is None or not c.available:
        return None
    if any(e.tls_failure != s.failure for e in s.endpoints):
        return None
    own = [ep for ep in c.tls if endpoint_host(ep) in c.dns_addrs]
    if not own or any(c.tls[ep] != s.failure for ep in own):
        return None
    return Hit(s.refs + ("control.tls_handshake",), failure=s.failure)


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


def _throttled_goodput(ctx: Context) -> Hit | None:
    """Goodput far under the control's (transfer.py), unless the run's own baseline shows the
    volunteer's link is that slow for every site."""
    if not ctx.obs.control.available:
        return None
    for h in ctx.obs.http:
        if h.main and h.samples and is_throttled(h, ctx.obs.control) is not None:
            if baseline_vetoes(ctx.obs, h):
                return None
            refs: tuple[str, ...] = (h.ref, "control.http_request.x_transfer")
            if ctx.obs.baseline is not None:
                refs += ("x_run_baseline",)
            return Hit(refs, failure=h.failure)
    return None


def _throttled_follow_up(ctx: Context) -> Hit | None:
    f = follow_up_goodput(ctx.obs)
    if f is None:
        return None
    refs = (f.http.ref, f.reference) + (
        (f.sni_probe.tls_ref,) if f.sni_probe and f.sni_probe.tls_ref else ()
    )
    final = ctx.final
    return Hit(refs, failure=final.failure if final is not None else None)


def _throttled_stage_times(ctx: Context) -> Hit | None:
    x = latency_excess(ctx.obs)
    if x is None:
        return None
    tls = [e.tls_ref for e in ctx.obs.endpoints if e.transaction_id == x.http.transaction_id]
    refs = (x.http.ref,) + tuple(r for r in tls if r)
    return Hit(refs + ("x_run_baseline", "control.http_request.x_transfer"), failure=x.http.failure)


def _slow_link(ctx: Context) -> Hit | None:
    for h in ctx.obs.http:
        if h.main and slow_link(ctx.obs, h):
            return Hit((h.ref, "x_run_baseline"), failure=h.failure)
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


def _server_error_tls(ctx: Context) -> Hit | None:
    """A 5xx over validated TLS: the network delivered the server's error intact. A CDN's
    anti-bot challenge (a false-positive fingerprint) is a gate a browser passes, not an
    error: it is left to the rules below (issue 16, item 3)."""
    f, c = ctx.final, ctx.obs.control
    if f is None or not _final_ok(ctx) or f.status < 500:
        return None
    if not f.url.lower().startswith("https://") or ctx.final_false_positive is not None:
        return None
    if c.http_seen and c.http_status >= 500:
        return Hit((f.ref, "control.http_request"))
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


def _tls_vouched_cleartext_diff(ctx: Context) -> Hit | None:
    """A cleartext page that differs from the control's, fetched from an answer the control
    never saw (nor its ASNs) and vouched for only by a valid certificate on port 443: a
    resolver that sends some names to a TLS pass-through proxy that filters cleartext looks
    exactly like this (OONI's httpDiffWithInconsistentDNS), so the DNS answer is the cause."""
    f, d = ctx.final, ctx.dns
    if f is None or not _final_ok(ctx) or f.depth != 0 or not d.tls_vouched:
        return None
    if not f.url.lower().startswith("http://") or not ctx.obs.control.http_ok:
        return None
    if not ctx.comparison.has_diff or endpoint_host(f.address) not in d.tls_vouched:
        return None
    return Hit(tuple(q.ref for q in d.lookups) + (f.ref, "control.http_request"))


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


def _unclassified(ctx: Context) -> Hit | None:
    """The failing step's error was not classified as a network failure (``unknown_failure:``,
    e.g. an old probe that could not decode a response): it proves nothing about the network,
    as OONI's backend scores such measurements with accuracy 0 (ooni-format.md 10.9)."""
    s = ctx.step
    if s.kind not in _TTH or s.failure is None or s.control_ok is not True:
        return None
    if not is_unknown_failure(s.failure):
        return None
    return Hit(s.refs + ("control",), failure=s.failure)


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
_TTH = _TCP | _TLS | _H
_ANY = _DNS | _TTH

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
    Rule("tcp.ip_blocked_sni_diag_control", O.TCP_IP_BLOCKED, "tcp_ip", False, E.CONTROL,
         _ip_blocked_sni_diag,
         "the innocuous-SNI handshake to the same IP was reset/closed too, and the control's "
         "handshake there (or its fetch) worked: the address is blocked"),
    Rule("http.throttled_follow_up", O.HTTP_THROTTLED, "http-failure", False, E.CONTROL,
         _throttled_follow_up,
         "the follow-up transfer under the same SNI/Host to the same address kept flowing under "
         "256 kbit/s and a quarter of the link the other targets of the run showed"),
    Rule("http.throttled_goodput", O.HTTP_THROTTLED, "http-failure", False, E.CONTROL,
         _throttled_goodput,
         "body goodput under 10% of the control's, under 256 kbit/s, flat, slow/incomplete, and "
         "not the speed the run's baseline shows for every site"),
    Rule("http.throttled_stage_times", O.HTTP_THROTTLED, "http-failure", False, E.CONTROL,
         _throttled_stage_times,
         "handshake and first byte (and body) took 5x what the other targets of the run and "
         "the control took, a second more, over a path whose round trip is normal"),
    Rule("http.slow_link", O.HTTP_SLOW_LINK, False, True, E.CONTROL, _slow_link,
         "the body kept flowing until the timeout at the link's own speed (the run's "
         "baseline): the page is too large for the volunteer's link, not interfered with"),
    Rule("http.host_diag_reset", O.HTTP_RESET, "http-failure", False, E.LOCAL,
         _host_diag(RESET | EOF, diag_ok=True),
         "request reset/closed, the same request with an innocuous Host got a response"),
    Rule("http.host_diag_timeout", O.HTTP_TIMEOUT, "http-failure", False, E.LOCAL,
         _host_diag(TIMEOUT, diag_ok=True),
         "request timed out, the same request with an innocuous Host got a response"),
    Rule("tcp.ip_blocked_host_diag_control", O.TCP_IP_BLOCKED, "tcp_ip", False, E.CONTROL,
         _ip_blocked_host_diag,
         "the innocuous-Host request to the same address was reset/closed too, the server never "
         "sent a byte on either connection, and the control fetched the page"),
    Rule("down.dns_control_no_address", O.DOWN_EVERYWHERE, False, False, E.CONTROL,
         _dns_control_no_address,
         "the probe failed to resolve; the control's answer held a CNAME but no address and "
         "its own fetch failed: nobody resolved it"),
    Rule("dns.nxdomain", O.DNS_NXDOMAIN, "dns", False, E.CONTROL, _dns_failed(True),
         "probe NXDOMAIN (or Android no-data) while the control resolved addresses"),
    Rule("dns.failure", O.DNS_FAILURE, "dns", False, E.CONTROL, _dns_failed(False),
         "other probe DNS failure while the control resolved addresses"),
    Rule("down.dns", O.DOWN_EVERYWHERE, False, False, E.CONTROL, _dns_both_failed,
         "the probe and the control both failed to resolve (or both got no address)"),
    Rule("down.dns_nxdomain_rewritten", O.DOWN_EVERYWHERE, False, False, E.CONTROL,
         _dns_nxdomain_rewritten,
         "the control got NXDOMAIN; the probe's resolver answered an address it also gives for "
         "a random name that cannot exist (NXDOMAIN rewriting): no site of that name to censor"),
    Rule("dns.bogon", O.DNS_BOGON, "dns", False, E.CONTROL, _dns_bogon,
         "the resolver answered a bogon the control did not see"),
    Rule("down.dns_bogon_everywhere", O.DOWN_EVERYWHERE, False, False, E.CONTROL, _dns_both_bogon,
         "the name resolves to bogons for the control too: misconfiguration, not censorship"),
    Rule("down.server_error_tls", O.DOWN_SERVER_ERROR, False, False, E.LOCAL, _server_error_tls,
         "a 5xx over validated TLS (not a CDN challenge page): the network delivered the "
         "server's error intact"),
    Rule("ok.https", O.OK, False, True, E.LOCAL, _ok_https,
         "final response over validated TLS: the network delivered the server's answer"),
    Rule("down.server_error", O.DOWN_SERVER_ERROR, False, False, E.CONTROL, _server_error,
         "the probe got a 5xx and so did the control"),
    Rule("ok.http_matches_control", O.OK, False, True, E.CONTROL, _ok_http,
         "final cleartext response matches the control (OONI's HTTP-diff rule)"),
    Rule("down.tls_failed_alike", O.DOWN_EVERYWHERE, False, False, E.CONTROL,
         _tls_failed_alike,
         "every handshake failed as the control's own handshakes at its own addresses did: "
         "the site's TLS is broken everywhere, an address difference alone is no DNS lie"),
    Rule("dns.unexpected_address", O.DNS_UNEXPECTED_ADDRESS, "dns", False, E.CONTROL,
         _dns_unexpected, "answers the control never saw, not in its ASNs, no validated TLS, "
         "and the fetch did not give the control's page"),
    Rule("http.benign_page", O.HTTP_BENIGN_PAGE, False, True, E.LOCAL, _benign_page,
         "the differing page is a known false positive (CDN challenge, default page...)"),
    Rule("dns.tls_vouched_cleartext_diff", O.DNS_UNEXPECTED_ADDRESS, "dns", False, E.CONTROL,
         _tls_vouched_cleartext_diff,
         "the cleartext page differs, fetched from an answer the control never saw that only a "
         "certificate on 443 vouches for: a resolver steering the name to a filtering proxy"),
    Rule("unknown.control_unavailable", O.UNKNOWN_CONTROL_UNAVAILABLE, None, None, E.NONE,
         _no_control, "no control, and no local evidence decides"),
    Rule("unknown.probe_no_ipv6", O.UNKNOWN_PROBE_NO_IPV6, None, None, E.NONE, _no_ipv6,
         "only IPv6 endpoints failed as unreachable: the probe's network lacks IPv6"),
    Rule("dns.later_hop_nxdomain", O.DNS_NXDOMAIN, "dns", False, E.CONTROL,
         _step(NXDOMAIN_FAILURES, _DNS, control_ok=True),
         "a redirect target did not resolve; the control followed the redirects"),
    Rule("dns.later_hop_failure", O.DNS_FAILURE, "dns", False, E.CONTROL,
         _step(None, _DNS, control_ok=True), "a redirect target failed to resolve"),
    Rule("unknown.probe_failure", O.UNKNOWN_PROBE_FAILURE, None, None, E.NONE, _unclassified,
         "the failing step's error is unknown_failure (not a network failure the probe "
         "recognised): no claim either way"),
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

#: ids that fired in earlier versions and never will again, oldest first
RETIRED: tuple[Retired, ...] = (
    Retired(
        "tcp.refused", "2026.11.1", ("tcp.syn_refused",),
        "the same facts, now called tcp/refused (tcp/reset was also the app tests' word for a "
        "reset connection attempt: one word, one meaning)",
    ),
    Retired(
        "http.throttled", "2026.12.1", ("http.throttled_goodput",),
        "it called a slow link throttling: a volunteer whose link is slower than 256 kbit/s "
        "for every site has a large page's goodput under the control's too",
    ),
    Retired(
        "tcp.ip_blocked_host_diag", "2026.12.1", ("tcp.ip_blocked_host_diag_control",),
        "it called tcp/ip-blocked without a control: a server that resets or stalls any "
        "request (HTTP/0.9, slow, huge request) fails the innocuous-Host retry too",
    ),
    Retired(
        "tcp.ip_blocked_sni_diag", "2026.12.1", ("tcp.ip_blocked_sni_diag_control",),
        "the same for TLS: a server that fails every handshake fails the innocuous SNI too; "
        "the control must have completed a handshake there",
    ),
)  # fmt: skip
