"""Where the probe may connect: ONE rule, decided by ONE function, applied at every hop.

A volunteer runs the probe inside their own network. A hostile resolver, site or middlebox can
name any address: a DNS answer of 192.168.1.1, a ``302 Location: http://169.254.169.254/``, an
app host that resolves to 10.0.0.1. Following it would make the volunteer's machine talk to
their own LAN, their router or their cloud's metadata service. So, for a measured target that
is public, the probe never contacts a special-purpose address (OONI's bogon list,
:func:`probe.netaddr.is_bogon`: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16,
documentation and benchmarking ranges, multicast, ``::1``, ``::``, fc00::/7, fe80::/10, the
IPv4-mapped and 6to4 forms of all these ...), nor the NAT64 form of one (``64:ff9b::a00:1``
reaches 10.0.0.1 through the translator of an IPv6-only network; RFC 6052's well-known prefix
and RFC 8215's local-use one are judged by the IPv4 address in their last 32 bits, so a DNS64
answer for a public site stays usable), except ranges the run declares public
(``Config.public_ranges``: only the lab's 198.18.0.0/15). Whether the address came from DNS,
from a redirect (a name or an IP literal), or is the address a diagnostic retries, the
orchestrators ask :meth:`ConnectPolicy.allows` right before connecting, and record what they
skipped in ``x_skipped_endpoints`` (never as a fake connect).

The *target* is what the user asked to measure: the input URL's host (web), an app file's host
(apps). A target that is itself a special-purpose IP literal (``http://192.168.1.1/``) is the
user's explicit choice: everything its measurement meets may be contacted. Infrastructure the
user configured (the resolver, the control vantage) is not a measured target and is not subject
to this rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from probe.config import IPNetwork
from probe.netaddr import is_bogon, join_endpoint, parse_ip

#: NAT64 prefixes whose addresses carry an IPv4 address in their last 32 bits (RFC 6052 2.1 the
#: well-known /96; RFC 8215 the local-use /48, as a /96 under it, the usual set-up)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def special_purpose(ip: str, public_ranges: tuple[IPNetwork, ...] = ()) -> bool:
    """Is ``ip`` an address a public target's measurement must not contact? OONI's bogons
    (:func:`probe.netaddr.is_bogon`, which the analysis uses unchanged) and the NAT64 forms of
    them; never an address inside ``public_ranges``."""
    if is_bogon(ip, public_ranges):
        return True
    addr = parse_ip(ip)
    if isinstance(addr, ipaddress.IPv6Address) and any(addr in net for net in _NAT64):
        if any(addr in net for net in public_ranges):
            return False
        return is_bogon(str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)), public_ranges)
    return False


@dataclass(frozen=True, slots=True)
class ConnectPolicy:
    """The rule for one measured target."""

    #: False only when the target is a special-purpose IP literal the user asked for
    target_is_public: bool
    public_ranges: tuple[IPNetwork, ...] = ()

    @classmethod
    def for_target(cls, host: str, public_ranges: Iterable[IPNetwork] = ()) -> ConnectPolicy:
        """The policy of a measurement whose target host is ``host`` (a name or an IP)."""
        ranges = tuple(public_ranges)
        return cls(target_is_public=not special_purpose(host, ranges), public_ranges=ranges)

    def allows(self, ip: str) -> bool:
        """May the probe connect to ``ip``? (False for anything that is not an IP address.)"""
        if parse_ip(ip) is None:
            return False
        return not self.target_is_public or not special_purpose(ip, self.public_ranges)

    def split(self, addresses: Sequence[str], port: int) -> tuple[list[str], list[str]]:
        """(the addresses that may be contacted, the ``ip:port`` endpoints that may not)."""
        usable: list[str] = []
        skipped: list[str] = []
        for ip in addresses:
            if self.allows(ip):
                usable.append(ip)
            else:
                skipped.append(join_endpoint(ip, port))
        return usable, skipped
