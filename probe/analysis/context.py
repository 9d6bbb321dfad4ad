"""Derived facts the rules read: DNS check, the redirect chain's last step, fingerprint hits (pure).

The *failing step* is found the way probe-cli's classic analysis walks its observations: take
the deepest redirect depth the main flow reached, then look at HTTP, then TLS, then TCP, then
DNS at that depth. Whether the control "succeeded on the same thing" is answered per step: the
control's own TCP/TLS result for that endpoint when it measured it, else its final HTTP fetch
(which followed the same redirects, so it proves every later hop worked for the control).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.analysis.dnscheck import DNSCheck, check_dns
from probe.analysis.fingerprints import Fingerprint, Fingerprints, PageMatch
from probe.analysis.httpdiff import NOT_COMPARED, HTTPComparison, compare
from probe.analysis.observations import DNSObs, EndpointObs, HTTPObs, Observations
from probe.config import IPNetwork
from probe.vocabulary import PROBE_CANCELLED

# The classes below are read-only by convention, not frozen, with a written-out ``__init__``:
# compiled, it is native code (see probe.analysis.observations).


@dataclass(slots=True, init=False)
class Step:
    """The step that stopped the main flow at its deepest depth (kind "none" if nothing did)."""

    kind: str  # "http" | "tls" | "tcp" | "dns" | "none"
    depth: int
    failure: str | None
    refs: tuple[str, ...]
    endpoints: tuple[EndpointObs, ...]
    http: HTTPObs | None
    control_ok: bool | None  # True: control did it; False: control failed too

    def __init__(
        self,
        kind: str,
        depth: int,
        failure: str | None,
        refs: tuple[str, ...],
        endpoints: tuple[EndpointObs, ...] = (),
        http: HTTPObs | None = None,
        control_ok: bool | None = None,
    ) -> None:
        self.kind = kind
        self.depth = depth
        self.failure = failure
        self.refs = refs
        self.endpoints = endpoints
        self.http = http
        self.control_ok = control_ok


@dataclass(slots=True, init=False)
class PageHit:
    http: HTTPObs
    fingerprint: Fingerprint
    via_redirect: bool
    in_location: bool

    def __init__(
        self,
        http: HTTPObs,
        fingerprint: Fingerprint,
        via_redirect: bool,
        in_location: bool,
    ) -> None:
        self.http = http
        self.fingerprint = fingerprint
        self.via_redirect = via_redirect
        self.in_location = in_location


@dataclass(slots=True, init=False)
class Context:
    obs: Observations
    dns: DNSCheck
    final: HTTPObs | None
    depth: int
    comparison: HTTPComparison
    step: Step
    page_hit: PageHit | None
    final_false_positive: Fingerprint | None
    dns_hit: tuple[DNSObs, str, Fingerprint] | None

    def __init__(
        self,
        obs: Observations,
        dns: DNSCheck,
        final: HTTPObs | None,
        depth: int,
        comparison: HTTPComparison,
        step: Step,
        page_hit: PageHit | None,
        final_false_positive: Fingerprint | None,
        dns_hit: tuple[DNSObs, str, Fingerprint] | None,
    ) -> None:
        self.obs = obs
        self.dns = dns
        self.final = final
        self.depth = depth
        self.comparison = comparison
        self.step = step
        self.page_hit = page_hit
        self.final_false_positive = final_false_positive
        self.dns_hit = dns_hit


def _final_and_depth(obs: Observations) -> tuple[HTTPObs | None, int]:
    main_http = [h for h in obs.http if h.main]
    depths = [h.depth for h in main_http]
    depths += [e.depth for e in obs.endpoints if e.main]
    depths += [q.depth for q in obs.dns if q.main]
    depth = max(depths, default=0)
    final = next((h for h in main_http if h.failure not in PROBE_CANCELLED), None)
    if final is None and main_http:
        final = main_http[0]
    return final, depth


def _control_for_endpoint(obs: Observations, e: EndpointObs, kind: str) -> bool | None:
    if kind == "tcp" and e.ctrl_tcp_seen:
        return e.ctrl_tcp_failure is None
    if kind == "tls" and e.ctrl_tls_seen:
        return e.ctrl_tls_failure is None
    return _control_http(obs)


def _control_http(obs: Observations) -> bool | None:
    c = obs.control
    if not c.available or not c.http_seen:
        return None
    return c.http_ok


def find_step(obs: Observations, final: HTTPObs | None, depth: int) -> Step:
    if final is not None and final.depth == depth:
        if final.failure is None:
            return Step("none", depth, None, (final.ref,), http=final)
        return Step(
            "http", depth, final.failure, (final.ref,), http=final, control_ok=_control_http(obs)
        )
    eps = [e for e in obs.endpoints if e.main and e.depth == depth]
    if eps:
        fetch = [e for e in eps if e.fetch is not False] or eps
        if depth == 0:
            fetch = [e for e in fetch if e.port == obs.port] or fetch
        tls_failed = [e for e in fetch if e.tcp_failure is None and e.tls_failure is not None]
        tcp_failed = [e for e in fetch if e.tcp_failure is not None]
        if tls_failed and not any(e.tcp_ok and e.tls_ok for e in fetch):
            e = tls_failed[0]
            refs = tuple(x.tls_ref for x in tls_failed if x.tls_ref)
            return Step(
                "tls", depth, e.tls_failure, refs, tuple(tls_failed),
                control_ok=_control_for_endpoint(obs, e, "tls"),
            )  # fmt: skip
        if tcp_failed and len(tcp_failed) == len(fetch):
            ctrl = [_control_for_endpoint(obs, e, "tcp") for e in tcp_failed]
            control_ok = True if True in ctrl else (False if False in ctrl else None)
            refs = tuple(x.tcp_ref for x in tcp_failed if x.tcp_ref)
            return Step(
                "tcp", depth, tcp_failed[0].tcp_failure, refs, tuple(tcp_failed),
                control_ok=control_ok,
            )  # fmt: skip
        if not obs.http and obs.legacy_http_failure is not None:
            return Step(
                "http", depth, obs.legacy_http_failure, ("http_experiment_failure",),
                control_ok=_control_http(obs),
            )  # fmt: skip
        return Step("none", depth, None, tuple(e.tcp_ref or e.tls_ref or "" for e in fetch))
    lookups = [q for q in obs.dns if q.main and q.depth == depth]
    failed = [q for q in lookups if q.failure is not None]
    if lookups and len(failed) == len(lookups):
        return Step(
            "dns", depth, failed[0].failure, tuple(q.ref for q in failed),
            control_ok=_control_http(obs) if depth > 0 else None,
        )  # fmt: skip
    return Step("none", depth, None, ())


def _page_hit(obs: Observations, fps: Fingerprints) -> tuple[PageHit | None, Fingerprint | None]:
    main = [h for h in obs.http if h.main and (h.status > 0 or h.headers)]
    final_fp = None
    ordered = sorted(main, key=lambda h: (h.depth, -h.index))  # first hop first
    for pos, h in enumerate(ordered):
        m: PageMatch = fps.match_http(status=h.status, headers=h.headers, body=h.body)
        if h is main[0] and m.false_positive is not None:
            final_fp = m.false_positive
        if m.blockpage is None:
            continue
        prev = ordered[pos - 1] if pos > 0 else None
        via = prev is not None and prev.is_redirect and prev.host != h.host
        in_location = m.blockpage.location == "header.location"
        return PageHit(h, m.blockpage, via, in_location), final_fp
    return None, final_fp


def _dns_hit(obs: Observations, fps: Fingerprints) -> tuple[DNSObs, str, Fingerprint] | None:
    for q in obs.dns:
        if not q.main:
            continue
        for a in q.addrs:
            if a in obs.control.dns_addrs:
                continue  # the control resolved it too: the site's own address
            fp = fps.match_dns(a, probe_cc=obs.probe_cc)
            if fp is not None:
                return q, a, fp
    return None


def build(
    obs: Observations, *, fingerprints: Fingerprints, public_ranges: Sequence[IPNetwork]
) -> Context:
    dns = check_dns(obs, public_ranges=public_ranges)
    final, depth = _final_and_depth(obs)
    comparison = compare(final, obs.control) if final is not None else NOT_COMPARED
    page_hit, final_fp = _page_hit(obs, fingerprints)
    return Context(
        obs=obs,
        dns=dns,
        final=final,
        depth=depth,
        comparison=comparison,
        step=find_step(obs, final, depth),
        page_hit=page_hit,
        final_false_positive=final_fp,
        dns_hit=_dns_hit(obs, fingerprints),
    )
