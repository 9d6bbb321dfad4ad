"""Address helpers shared by the probe, the control server and the analysis (pure, no I/O).

``is_bogon`` follows OONI netxlite's bogon list (reference/ooni-format.md 10.4). Ranges declared
public through ``Config.public_ranges`` (the lab's 198.18.0.0/15) are never bogons.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache

_BOGONS_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
    )
)
_BOGONS_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "::/96",
        "100::/64",
        "2001:10::/28",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


def _bare(text: str) -> str:
    """``text`` without surrounding spaces, brackets and zone id (what ``parse_ip`` reads)."""
    return text.strip().strip("[]").split("%", 1)[0]


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``text`` (brackets and zone ids tolerated), or None."""
    try:
        return ipaddress.ip_address(_bare(text))
    except ValueError:
        return None


#: a dotted-quad IPv4 address as ``ipaddress`` accepts it (no leading zeros, each part <= 255)
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z")  # fmt: skip


def is_ip(text: str) -> bool:
    """``parse_ip(text) is not None``; a plain IPv4 address, and a text with a character no
    address has (a host name), are told apart without ``ipaddress``, which runs in the
    interpreter and raises for every name it is shown."""
    if _IPV4.match(text) is not None:
        return True
    if _bare(text).strip("0123456789abcdefABCDEF:."):
        return False
    return parse_ip(text) is not None


@lru_cache(maxsize=4096)
def _bogon_cached(ip: str, public: tuple[str, ...]) -> bool:
    addr = parse_ip(ip)
    if addr is None:
        return False
    for net in public:
        if addr in ipaddress.ip_network(net):
            return False
    if isinstance(addr, ipaddress.IPv4Address):
        return any(addr in n for n in _BOGONS_V4)
    if addr.ipv4_mapped is not None:
        return _bogon_cached(str(addr.ipv4_mapped), public)
    if addr.sixtofour is not None:
        return _bogon_cached(str(addr.sixtofour), public)
    return any(addr in n for n in _BOGONS_V6)


def is_bogon(ip: str, public_ranges: Iterable[object] = ()) -> bool:
    """True for special-purpose addresses a public name should never resolve to.

    Returns False for text that is not an IP address.
    """
    public = tuple(sorted(str(r) for r in public_ranges)) if public_ranges else ()
    return _bogon_cached(ip, public)


def is_loopback(ip: str) -> bool:
    addr = parse_ip(ip)
    return addr is not None and addr.is_loopback


def split_endpoint(endpoint: str, *, default_port: int | None = None) -> tuple[str, int]:
    """The ONE endpoint parser: ``"1.2.3.4:443"``, ``"[::1]:443"``, ``"host:443"`` -> (host
    without brackets, port). With ``default_port``, a bare ``"1.2.3.4"``, ``"[::1]"``,
    ``"::1"`` or ``"host"`` gives that port. ValueError for anything else: no port (and no
    default), an empty host, a port that is not 0-65535 in ASCII digits, junk after ``]``."""
    if endpoint.startswith("["):
        host, sep, rest = endpoint[1:].partition("]")
        if not sep:
            raise ValueError(f"not an endpoint: {endpoint!r}")
        if rest:
            if rest[0] != ":":
                raise ValueError(f"not an endpoint: {endpoint!r}")
            port = rest[1:]
        elif default_port is not None:
            port = str(default_port)
        else:
            raise ValueError(f"no port in {endpoint!r}")
    else:
        host, sep, port = endpoint.rpartition(":")
        bare_v6 = sep and ":" in host and default_port is not None and is_ip(endpoint)
        if not sep or bare_v6:
            if default_port is None:
                raise ValueError(f"no port in {endpoint!r}")
            host, port = endpoint, str(default_port)
    if not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        raise ValueError(f"not an endpoint: {endpoint!r}")
    number = int(port)
    if number > 65535:
        raise ValueError(f"port out of range in {endpoint!r}")
    return host, number


def endpoint_host(endpoint: str) -> str:
    """The host (address) part of ``endpoint``, without brackets; ``endpoint`` itself when it
    is not ``host:port`` (lenient: for facts read from other probes' measurements)."""
    try:
        return split_endpoint(endpoint)[0]
    except ValueError:
        return endpoint.strip("[]")


def join_endpoint(ip: str, port: int) -> str:
    """(ip, port) -> ``"ip:port"``, with brackets for IPv6 (OONI's ``address`` format)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
