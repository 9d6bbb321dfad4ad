"""Privacy by construction: what a measurement publishes about the volunteer who ran it.

A measurement is public data, and the sites and networks it measures are hostile: a server that
sees the volunteer's address can plant it, in any form, anywhere in what it sends back, to
unmask the volunteer once the measurement is published. So nothing is written as the probe
recorded it: :class:`~probe.privacy.publish.Publisher` builds the published copy field by field,
deciding from what each field *is* (text, an HTTP body and its encoding, a certificate, a DNS
message, other binary data) what can be published, what must be rewritten and what must be
withheld (with a marker saying why). When in doubt, it withholds. See ``docs/privacy.md``.

Modules (each with one job):

* :mod:`probe.privacy.forms`: every written form of an address, as a regular expression;
* :mod:`probe.privacy.scrubber`: finding and replacing those forms in text and bytes;
* :mod:`probe.privacy.content`: undoing ``Content-Encoding`` with bounded output;
* :mod:`probe.privacy.certs`: whether a certificate names an address;
* :mod:`probe.privacy.publish`: the policy, field by field;
* :mod:`probe.privacy.local`: the probe's own addresses, from the kernel's tables.

:func:`scrub_measurement` is the one-call form for a set of addresses (a publisher is built once
per set and kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from probe.privacy.local import local_addresses, parse_fib_trie, parse_if_inet6, parse_ip_json
from probe.privacy.publish import DEFAULT_DECODED_CAP, WITHHELD, Publisher
from probe.privacy.scrubber import SCRUBBED, Scrubber

__all__ = [
    "DEFAULT_DECODED_CAP",
    "SCRUBBED",
    "WITHHELD",
    "Publisher",
    "Scrubber",
    "local_addresses",
    "parse_fib_trie",
    "parse_if_inet6",
    "parse_ip_json",
    "publisher",
    "scrub_measurement",
]


@lru_cache(maxsize=8)
def publisher(
    probe_ips: tuple[str, ...], *, include_ip: bool = False, decoded_cap: int = DEFAULT_DECODED_CAP
) -> Publisher:
    """One publisher per set of addresses (compiling the forms takes a fraction of a second)."""
    return Publisher(probe_ips, include_ip=include_ip, decoded_cap=decoded_cap)


def scrub_measurement(
    msmt: dict[str, Any],
    *,
    probe_ips: Iterable[str],
    include_ip: bool = False,
    decoded_cap: int = DEFAULT_DECODED_CAP,
) -> dict[str, Any]:
    """The published copy of ``msmt`` for the probe's addresses ``probe_ips``."""
    chosen = publisher(tuple(probe_ips), include_ip=include_ip, decoded_cap=decoded_cap)
    return chosen.publish(msmt)
