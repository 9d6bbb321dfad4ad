"""DNS consistency of the depth-0 system-resolver lookups with the control (pure).

Follows ooni-format.md 10.4 with two deliberate changes that remove false positives:

- an address the probe itself reached with a TLS handshake that VALIDATED a certificate for the
  host name (SNI = host, verification on) is genuine, whatever the control resolved: geo-CDNs
  hand out addresses the control never sees. Only the probe's own handshakes count: the control
  reaching an address from its network says nothing about what the probe's path does to it;
- both sides failing (any failure, not only NXDOMAIN) is consistent: the name is broken for
  everyone, which is "down", not blocking. A control answer that holds names only (the legacy
  test helper lists CNAME targets in ``addrs``) and no address, while the control's own fetch
  failed, is a failure too: the control did not resolve the name either (issue 16, item 1).

``tls_vouched`` lists the answers that are consistent *only* because the probe validated a
certificate for the host there (not seen by the control, not in its ASNs): a TLS pass-through
proxy presents the real certificate too, so such an address vouches for the site's HTTPS,
not for what it serves in cleartext (rule ``dns.tls_vouched_cleartext_diff``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.analysis.observations import DNSObs, Observations
from probe.config import IPNetwork
from probe.netaddr import is_bogon, is_ip


#: read-only by convention, not frozen, with a written-out ``__init__``: compiled, it is
#: native code (see probe.analysis.observations)
@dataclass(slots=True, init=False)
class DNSCheck:
    consistency: str | None  # "consistent" | "inconsistent" | None
    reason: str
    lookups: tuple[DNSObs, ...]
    failure: str | None
    addrs: tuple[str, ...]
    bogons: tuple[str, ...]
    unexplained: tuple[str, ...]
    tls_vouched: tuple[str, ...]

    def __init__(
        self,
        consistency: str | None,
        reason: str,
        lookups: tuple[DNSObs, ...],
        failure: str | None,
        addrs: tuple[str, ...],
        bogons: tuple[str, ...],
        unexplained: tuple[str, ...],
        tls_vouched: tuple[str, ...] = (),
    ) -> None:
        self.consistency = consistency
        self.reason = reason
        self.lookups = lookups
        self.failure = failure
        self.addrs = addrs
        self.bogons = bogons
        self.unexplained = unexplained
        self.tls_vouched = tls_vouched


def depth0_lookups(obs: Observations) -> tuple[DNSObs, ...]:
    """The lookups a classic run bases its verdict on (system resolver, depth 0, main flow)."""
    cands = [q for q in obs.dns if q.depth == 0 and q.hostname.rstrip(".").lower() == obs.host]
    for pick in (
        [q for q in cands if q.main and q.system],
        [q for q in cands if q.system],
        [q for q in cands if q.main and q.engine != "doh"],
    ):
        if pick:
            return tuple(pick)
    return ()


def validated_ips(obs: Observations) -> frozenset[str]:
    """Addresses where the probe completed a verified TLS handshake with SNI = the URL host."""
    return frozenset(
        e.ip
        for e in obs.endpoints
        if e.diag is None
        and e.tls_ok
        and not e.tls_no_verify
        and (e.tls_server_name or "").rstrip(".").lower() == obs.host
    )


def check_dns(obs: Observations, *, public_ranges: Sequence[IPNetwork] = ()) -> DNSCheck:
    lookups = depth0_lookups(obs)
    addrs = tuple(dict.fromkeys(a for q in lookups for a in q.addrs))
    failure = None
    if not addrs:
        failure = next((q.failure for q in lookups if q.failure), None)
    bogons = tuple(a for a in addrs if is_bogon(a, public_ranges))

    def result(
        consistency: str | None,
        reason: str,
        unexplained: tuple[str, ...] = (),
        vouched: tuple[str, ...] = (),
    ) -> DNSCheck:
        return DNSCheck(consistency, reason, lookups, failure, addrs, bogons, unexplained, vouched)

    if obs.host_is_ip:
        return result("consistent", "ip_literal")
    if not lookups:
        return result(None, "no_lookup")
    ctrl = obs.control
    valid_tls = validated_ips(obs)
    if not addrs:
        if not ctrl.dns_seen:
            return result(None, "no_control")
        if ctrl.dns_failure is not None or not ctrl.dns_addrs or control_unresolved(obs):
            return result("consistent", "both_failed")
        return result("inconsistent", "unexpected_failure")
    if not ctrl.dns_seen:
        if all(a in valid_tls for a in addrs if a not in bogons) and not bogons:
            return result("consistent", "valid_tls")
        return result(None, "no_control")
    cbogons = [a for a in ctrl.dns_addrs if is_bogon(a, public_ranges)]
    if bogons and ctrl.dns_addrs and len(cbogons) == len(ctrl.dns_addrs):
        return result("consistent", "both_bogon")
    control_asns = {ctrl.ip_asn.get(a, 0) for a in ctrl.dns_addrs} - {0}
    probe_asns = {n for q in lookups for n in q.asns}
    unexplained = []
    vouched = []
    for a in addrs:
        if a in ctrl.dns_addrs:
            continue
        asn = ctrl.ip_asn.get(a, 0)
        if asn and asn in control_asns:
            continue
        if a in valid_tls:
            vouched.append(a)
            continue
        unexplained.append(a)
    if probe_asns & control_asns and not bogons:
        # the probe's own GeoIP puts an answer in the control's network
        unexplained, vouched = [], []
    if len(unexplained) < len(addrs) and not (set(bogons) & set(unexplained)):
        return result("consistent", "valid_addresses", tuple(unexplained), tuple(vouched))
    if ctrl.dns_failure is not None:
        return result("inconsistent", "resolved_while_control_failed", tuple(unexplained))
    return result("inconsistent", "unexpected_addresses", tuple(unexplained))


def control_unresolved(obs: Observations) -> bool:
    """The control's answer holds names only (no address) and its own fetch failed: it did
    not resolve the name either (the legacy test helper lists CNAME targets in ``addrs``)."""
    ctrl = obs.control
    if not ctrl.dns_addrs or any(is_ip(a) for a in ctrl.dns_addrs):
        return False
    return ctrl.http_seen and (ctrl.http_failure is not None or ctrl.http_status <= 0)
