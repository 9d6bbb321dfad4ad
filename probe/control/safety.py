"""Which addresses the control server may contact (no SSRF, also not through DNS).

The TH connects to addresses a stranger sent it or that a stranger's domain resolves to, so it
refuses every special-purpose address: OONI's bogon list (:func:`probe.netaddr.is_bogon`) and
everything Python's :mod:`ipaddress` does not call global (private, loopback, link-local,
multicast, unspecified, reserved, shared, documentation, benchmarking ...). IPv4-mapped and
6to4 IPv6 addresses are judged by the IPv4 address they carry. Only the ranges given by the
operator with ``--lab-allow-ranges`` are exempt; the check is applied to resolved addresses
and to every redirect hop, right before connecting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from probe.config import IPNetwork
from probe.netaddr import is_bogon, parse_ip

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _special(addr: _IPAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return _special(addr.ipv4_mapped)
        if addr.sixtofour is not None:
            return _special(addr.sixtofour)
        if addr.teredo is not None:
            return True
    return bool(
        not addr.is_global
        or addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
        or is_bogon(str(addr))
    )


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses are allowed; special-purpose ones only inside ``allow_ranges``."""

    allow_ranges: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, ranges: Iterable[IPNetwork]) -> AddressPolicy:
        return cls(tuple(ranges))

    def allowed(self, ip: str) -> bool:
        """True when the TH may connect to ``ip`` (False for anything that is not an IP)."""
        if "%" in ip:
            return False  # zone ids name a local interface
        addr = parse_ip(ip)
        if addr is None:
            return False
        if any(addr.version == net.version and addr in net for net in self.allow_ranges):
            return True
        return not _special(addr)
