"""Which router addresses a packet-level measurement may publish (privacy, docs/packet.md).

The routers between the volunteer and the edge of their network identify that network as
closely as the volunteer's own address does; with ``--no-include-asn`` they would even undo the
volunteer's choice. So a router's address (an ICMP error's source) is published only when it is
known to lie outside the volunteer's network:

- never a bogon (:func:`probe.netaddr.is_bogon`, honouring ``--public-ranges`` for the lab);
- never an address whose ASN is unknown (no ASN database, or no record): it could be theirs;
- never an address in the volunteer's ASN (``Config.probe_asn``, even when it is withheld from
  publication); when that ASN is unknown, the ASN of the first router with a known ASN is taken
  as theirs (the access network).

A published hop carries its address, ASN and AS organisation; a withheld one only the reason
(``"bogon"``, ``"unknown-network"``, ``"own-network"``). The hop *number* is always published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from probe.config import IPNetwork
from probe.netaddr import is_bogon

#: address -> (ASN, AS organisation); (None, None) when unknown
AsnLookup = Callable[[str], tuple[int | None, str | None]]


def no_lookup(ip: str) -> tuple[int | None, str | None]:
    """The lookup without an ASN database: nothing is known."""
    return None, None


@dataclass(frozen=True, slots=True)
class HopPolicy:
    public_ranges: tuple[IPNetwork, ...]
    own_asns: frozenset[int]
    lookup: AsnLookup

    def describe(self, ip: str) -> dict[str, Any]:
        """The publishable facts of one router address (``src``, ``src_asn``, ...)."""
        if is_bogon(ip, self.public_ranges):
            return _withheld("bogon")
        asn, org = self.lookup(ip)
        if asn is None:
            return _withheld("unknown-network")
        if asn in self.own_asns:
            return _withheld("own-network")
        return {"src": ip, "src_asn": asn, "src_as_org": org, "src_withheld": None}


def _withheld(reason: str) -> dict[str, Any]:
    return {"src": None, "src_asn": None, "src_as_org": None, "src_withheld": reason}


def policy(
    routers: Sequence[str],
    *,
    own_asn: int | None,
    lookup: AsnLookup,
    public_ranges: Iterable[IPNetwork] = (),
) -> HopPolicy:
    """The policy for one path; ``routers`` are the ICMP sources in TTL order."""
    ranges = tuple(public_ranges)
    own: set[int] = {own_asn} if own_asn else set()
    if not own:
        for ip in routers:
            if is_bogon(ip, ranges):
                continue
            asn, _ = lookup(ip)
            if asn is not None:
                own.add(asn)
                break
    return HopPolicy(public_ranges=ranges, own_asns=frozenset(own), lookup=lookup)


def parse_asn(text: str) -> int | None:
    """``"AS64500"`` -> 64500; ``"AS0"`` and anything else -> None."""
    digits = text.upper().removeprefix("AS")
    return int(digits) if digits.isdigit() and int(digits) > 0 else None
