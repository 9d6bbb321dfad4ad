"""Run configuration: one frozen object, passed explicitly (no global state).

All timeouts live in :class:`Timeouts`; stages read them from here and enforce them with trio
cancel scopes. Nothing else in the probe contains literal seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines in seconds for each step of a measurement."""

    dns: float = 4.0
    #: after the first UDP DNS answer, keep listening this long for injected/late duplicates
    dns_listen_window: float = 0.5
    connect: float = 10.0
    tls: float = 10.0
    #: one HTTP round trip (request written, headers and body read up to the cap)
    http: float = 10.0
    #: the control (test helper) request
    control: float = 30.0
    #: hard deadline for one whole target, all redirects and retries included
    target: float = 90.0
    #: one public-IP discovery attempt (the whoami GET, or one STUN server's round trip)
    geolocate: float = 5.0
    #: packet-level test (probe.packet): how long one TTL-limited probe waits for a first reply
    packet_reply: float = 1.0
    #: ... and then keeps listening for more (an injected packet races the genuine one): twice
    #: the connection's round trip plus ``packet_linger_floor``, never more than ``packet_linger``
    packet_linger: float = 0.5
    packet_linger_floor: float = 0.1


@dataclass(frozen=True, slots=True)
class Privacy:
    """What the volunteer agrees to publish."""

    include_ip: bool = False
    include_asn: bool = True
    include_cc: bool = True


#: public STUN servers tried in order, as OONI's probe-cli does (host:port)
DEFAULT_STUN_SERVERS = ("stun.l.google.com:19302", "stun.cloudflare.com:3478")


@dataclass(frozen=True, slots=True)
class Geolocate:
    """How the probe learns its public IP, ASN and country (see docs/geolocation.md)."""

    #: False (``--no-geolocate``): no discovery, no database lookup
    enabled: bool = True
    #: ask the control vantage's ``GET /x/whoami`` first (only our helper has it)
    whoami: bool = True
    stun_servers: tuple[str, ...] = DEFAULT_STUN_SERVERS
    #: MaxMind-format databases; None = the user data dir's ``asn.mmdb`` / ``country.mmdb``
    asn_db: Path | None = None
    country_db: Path | None = None


@dataclass(frozen=True, slots=True)
class Config:
    timeouts: Timeouts = field(default_factory=Timeouts)
    privacy: Privacy = field(default_factory=Privacy)
    #: UDP resolver "ip:port" for the wire-level DNS query; None = the system's configured one
    resolver: str | None = None
    #: extra CA bundle (PEM) trusted in addition to the Mozilla roots (the lab uses it)
    ca_file: Path | None = None
    #: control vantage (Web Connectivity test helper) URL; None = no control
    control_url: str | None = None
    probe_asn: str = "AS0"
    probe_cc: str = "ZZ"
    #: the ASN's organisation (OONI's ``probe_network_name``); "" when unknown
    probe_network_name: str = ""
    geolocate: Geolocate = field(default_factory=Geolocate)
    #: ranges that must be treated as ordinary public addresses although they are special-purpose
    #: (only the lab sets this, e.g. 198.18.0.0/15)
    public_ranges: tuple[IPNetwork, ...] = ()
    concurrency: int = 20
    max_redirects: int = 10
    body_cap: int = 1 << 19
    user_agent: str = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
    )


def parse_ranges(text: str) -> tuple[IPNetwork, ...]:
    """Parse ``CIDR,CIDR,...``; raises ValueError with the bad item named."""
    out: list[IPNetwork] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR range: {item!r}") from exc
    return tuple(out)
