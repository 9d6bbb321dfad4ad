"""Geolocation of the probe: public IP, then ASN/country from the databases, then precedence.

:func:`geolocate` runs the discovery methods of :mod:`probe.geo.publicip` and looks the address
up in :class:`probe.geo.db.GeoDatabases`. :func:`apply` merges the result into the run's
:class:`~probe.config.Config` with the precedence

    explicit ``--probe-asn``/``--probe-cc`` (or config file)  >  geolocation  >  AS0 / ZZ

and sets ``probe_network_name`` from the ASN organisation when the ASN is the geolocated one.
The privacy switches are applied later, where the values are written (envelope, report id).

:meth:`Geolocation.annotations` says how it was done, as strings, never the address itself:
``x_geo_ip_source`` (``whoami``, ``stun``, ``none`` when nothing answered, ``off`` with
``--no-geolocate``), ``x_geo_db`` (database type and build date, or ``none``),
``x_geo_asn_source`` / ``x_geo_cc_source`` (``flag``, ``geoip`` or ``none``).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, replace

from probe.config import Config
from probe.geo.db import GeoDatabases, GeoInfo
from probe.geo.publicip import Attempt, discover_both
from probe.net import TRIO, Network


@dataclass(frozen=True, slots=True)
class Geolocation:
    #: the discovered public address (None: off or nothing answered); never written anywhere
    public_ip: str | None
    ip_source: str
    info: GeoInfo
    db: str
    attempts: tuple[Attempt, ...] = ()
    asn_source: str = "none"
    cc_source: str = "none"
    #: the other family's public address, when both answered (scrubbed too, never looked up)
    other_ips: tuple[str, ...] = ()

    def annotations(self) -> dict[str, str]:
        return {
            "x_geo_ip_source": self.ip_source,
            "x_geo_db": self.db,
            "x_geo_asn_source": self.asn_source,
            "x_geo_cc_source": self.cc_source,
        }

    def scrub_addresses(self) -> tuple[str, ...]:
        """The addresses to add to the scrubbed ones (not loopback/unspecified: see privacy)."""
        out: list[str] = []
        for ip in (self.public_ip, *self.other_ips):
            if ip is None:
                continue
            addr = ipaddress.ip_address(ip)
            if not (addr.is_loopback or addr.is_unspecified):
                out.append(str(addr))
        return tuple(out)


#: with ``--no-geolocate``
OFF = Geolocation(public_ip=None, ip_source="off", info=GeoInfo(), db="none")


async def geolocate(
    config: Config,
    *,
    ssl_context: ssl.SSLContext,
    databases: GeoDatabases,
    network: Network = TRIO,
) -> Geolocation:
    """Discover the public address (whoami, then STUN) and look it up in ``databases``."""
    settings = config.geolocate
    if not settings.enabled:
        return OFF
    v4, v6 = await discover_both(
        control_url=config.control_url,
        ssl_context=ssl_context,
        stun_servers=settings.stun_servers,
        timeout=config.timeouts.geolocate,
        use_whoami=settings.whoami,
        network=network,
    )
    attempts = v4 + v6
    answers = [chain[-1] for chain in (v4, v6) if chain and chain[-1].ip is not None]
    found = answers[0] if answers else None  # IPv4 first: what most databases know best
    others = (
        tuple(a.ip for a in answers[1:] if a.ip is not None and a.ip != found.ip) if found else ()
    )
    if found is None or found.ip is None:
        return Geolocation(
            public_ip=None,
            ip_source="none",
            info=GeoInfo(),
            db=databases.description(),
            attempts=tuple(attempts),
        )
    return Geolocation(
        public_ip=found.ip,
        other_ips=others,
        ip_source=found.method,
        info=databases.lookup(found.ip),
        db=databases.description(),
        attempts=tuple(attempts),
    )


def apply(
    config: Config, geo: Geolocation, *, asn_explicit: bool, cc_explicit: bool
) -> tuple[Config, Geolocation]:
    """``config`` with probe_asn/probe_cc/probe_network_name by precedence, and ``geo`` with
    the sources recorded."""
    info = geo.info
    if asn_explicit:
        asn, asn_source = config.probe_asn, "flag"
    elif info.asn is not None:
        asn, asn_source = f"AS{info.asn}", "geoip"
    else:
        asn, asn_source = "AS0", "none"
    name = (info.network_name or "") if info.asn is not None and asn == f"AS{info.asn}" else ""
    if cc_explicit:
        cc, cc_source = config.probe_cc, "flag"
    elif info.cc is not None:
        cc, cc_source = info.cc, "geoip"
    else:
        cc, cc_source = "ZZ", "none"
    new_config = replace(config, probe_asn=asn, probe_cc=cc, probe_network_name=name)
    return new_config, replace(geo, asn_source=asn_source, cc_source=cc_source)


def summary(geo: Geolocation, config: Config) -> str:
    """One log line for the volunteer (no address in it)."""
    if geo.ip_source == "off":
        return (
            "geolocation off: only interface addresses are scrubbed; "
            f"ASN/CC from flags ({config.probe_asn}, {config.probe_cc})"
        )
    if geo.public_ip is None:
        tried = ", ".join(f"{a.method} {a.server}: {a.failure}" for a in geo.attempts) or "none"
        return (
            f"geolocation: public IP not found (tried {tried}); "
            f"{config.probe_asn} {config.probe_cc}"
        )
    name = f" ({config.probe_network_name})" if config.probe_network_name else ""
    return (
        f"geolocation: public IP found via {geo.ip_source} (scrubbed from every measurement); "
        f"{config.probe_asn}{name} [{geo.asn_source}], {config.probe_cc} [{geo.cc_source}]; "
        f"databases: {geo.db}"
    )
