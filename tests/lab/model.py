"""Lab facts: namespaces, addresses, paths, and the sites/scenarios loaded from scenarios.toml.

Pure data, no side effects. Every address is inside 198.18.0.0/15 (RFC 2544 benchmarking range),
which the probe is told to treat as public (``--public-ranges 198.18.0.0/15``).

The path from the volunteer to the servers crosses three routers, each answering TTL expiry with
ICMP time exceeded (a traceroute from cp-client sees hops 1-3, the servers at hop 4)::

    cp-client -- cp-isp (hop 1: ISP router, resolver, censor) -- cp-transit (hop 2: plain
    router) -- cp-border (hop 3: border router, on-path injector) -- cp-inet (hop 4: servers)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIOS_FILE = HERE / "scenarios.toml"

NS_CLIENT = "cp-client"
NS_ISP = "cp-isp"
NS_TRANSIT = "cp-transit"
NS_BORDER = "cp-border"
NS_INET = "cp-inet"
NAMESPACES = (NS_CLIENT, NS_ISP, NS_TRANSIT, NS_BORDER, NS_INET)
#: the namespaces that forward (ip_forward=1, no ICMP rate limit), in path order from the client
ROUTERS = (NS_ISP, NS_TRANSIT, NS_BORDER)

PUBLIC_RANGES = ("198.18.0.0/15",)

# client <-> isp link (198.18.0.0/24)
CLIENT_IF, ISP_CLIENT_IF = "cpc-isp", "cpi-client"
CLIENT_ADDR, ISP_CLIENT_ADDR = "198.18.0.2", "198.18.0.1"
# isp <-> transit link (198.18.1.0/24): the ISP's way towards the internet
ISP_INET_IF, TRANSIT_ISP_IF = "cpi-inet", "cpt-isp"
ISP_INET_ADDR, TRANSIT_ISP_ADDR = "198.18.1.1", "198.18.1.2"
# transit <-> border link (198.18.3.0/24)
TRANSIT_BORDER_IF, BORDER_TRANSIT_IF = "cpt-border", "cpb-transit"
TRANSIT_BORDER_ADDR, BORDER_TRANSIT_ADDR = "198.18.3.1", "198.18.3.2"
# border <-> inet link (198.18.4.0/24)
BORDER_INET_IF, INET_IF = "cpb-inet", "cpn-border"
BORDER_INET_ADDR, INET_ADDR = "198.18.4.1", "198.18.4.2"


@dataclass(frozen=True)
class Link:
    """One veth pair: (namespace, interface, address) at each end, both in one /24."""

    a_ns: str
    a_if: str
    a_addr: str
    b_ns: str
    b_if: str
    b_addr: str


LINKS = (
    Link(NS_CLIENT, CLIENT_IF, CLIENT_ADDR, NS_ISP, ISP_CLIENT_IF, ISP_CLIENT_ADDR),
    Link(NS_ISP, ISP_INET_IF, ISP_INET_ADDR, NS_TRANSIT, TRANSIT_ISP_IF, TRANSIT_ISP_ADDR),
    Link(
        NS_TRANSIT,
        TRANSIT_BORDER_IF,
        TRANSIT_BORDER_ADDR,
        NS_BORDER,
        BORDER_TRANSIT_IF,
        BORDER_TRANSIT_ADDR,
    ),
    Link(NS_BORDER, BORDER_INET_IF, BORDER_INET_ADDR, NS_INET, INET_IF, INET_ADDR),
)

#: (namespace, destination, gateway): only lab ranges, no default route anywhere, no loops
ROUTES = (
    (NS_CLIENT, "198.18.0.0/15", ISP_CLIENT_ADDR),
    (NS_ISP, "198.18.3.0/24", TRANSIT_ISP_ADDR),
    (NS_ISP, "198.18.4.0/24", TRANSIT_ISP_ADDR),
    (NS_ISP, "198.19.0.0/16", TRANSIT_ISP_ADDR),
    (NS_TRANSIT, "198.18.0.0/24", ISP_INET_ADDR),
    (NS_TRANSIT, "198.18.2.0/24", ISP_INET_ADDR),
    (NS_TRANSIT, "198.18.4.0/24", BORDER_TRANSIT_ADDR),
    (NS_TRANSIT, "198.19.0.0/16", BORDER_TRANSIT_ADDR),
    (NS_BORDER, "198.18.0.0/23", TRANSIT_BORDER_ADDR),
    (NS_BORDER, "198.18.2.0/24", TRANSIT_BORDER_ADDR),
    (NS_BORDER, "198.19.0.0/16", INET_ADDR),
    (NS_INET, "198.18.0.0/16", BORDER_INET_ADDR),
)

#: what a traceroute from cp-client sees: hop number -> the router's address facing the client
#: (its ICMP time exceeded comes from there); the servers in cp-inet are at hop PATH_LENGTH
HOPS = {1: ISP_CLIENT_ADDR, 2: TRANSIT_ISP_ADDR, 3: BORDER_TRANSIT_ADDR}
PATH_LENGTH = 4

#: the lab's ASN database (written at lab-up as lab-state/geoip/asn.mmdb): the volunteer's ISP
#: owns the client link, its link to the transit router and its service addresses; the border
#: router's client-facing side belongs to a national backbone; the rest is "the internet"
LAB_ASNS = (
    ("198.18.0.0/23", 64500, "Lab ISP"),
    ("198.18.2.0/24", 64500, "Lab ISP"),
    ("198.18.3.0/24", 64510, "Lab national backbone"),
    ("198.18.4.0/24", 64520, "Lab internet"),
    ("198.19.0.0/16", 64520, "Lab internet"),
)
#: the volunteer's ASN in the lab (the ISP's)
CLIENT_ASN = "AS64500"

# services in cp-isp (on its loopback)
ISP_RESOLVER = "198.18.2.53"
ISP_BLOCKPAGE = "198.18.2.10"
ISP_TPROXY = "198.18.2.80"
ISP_MITM = "198.18.2.44"  # TLS interception server (leaf certificates from the censor CA)
# services in cp-inet (on its loopback)
AUTH_DNS = "198.19.0.53"
PUBLIC_RESOLVER = "198.19.8.8"
CONTROL_ADDR = "198.19.0.100"
CONTROL_PORT = 443
CONTROL_NAME = "control.lab.test"
# the collector (tests/lab/collector.py) beside the control vantage, on two ports: the censor
# drops the second one (configs.iptables_isp), so a volunteer configured with it finds the
# collector blocked, and the upload proxy on the uncensored side still reaches it
COLLECTOR_PORT = 8443
COLLECTOR_BLOCKED_PORT = 8444
APP_RANGE = "198.19.2.0/24"  # the app hosts ([[app_host]] in scenarios.toml)
APP_ZONE = "app.lab.test"
APPS_DIR = HERE / "apps"  # lab variants of the app files
SIGNAL_CA_FILE = APPS_DIR / "signal-lab-ca.pem"  # written by lab-up (gitignored)

LAB_ZONE = "lab.test"
THROTTLE_RATE = "64kbit"
THROTTLE_BYTES_PER_S = 8000
LARGE_OBJECT_SIZE = 320 * 1024
INJECT_QUEUE = 1
DELAY_QUEUE = 2
BORDER_QUEUE = 3  # the on-path TCP injector in cp-border

#: censor kinds applied in cp-border by the on-path TCP injector (tests/lab/tcpinject.py) rather
#: than by cp-isp's iptables: they see packets that reach hop 3 (raw PREROUTING, before the TTL
#: check), let them continue, and race forged packets back to the client
BORDER_CENSORS = ("border-sni-rst", "border-blockpage")


def state_dir() -> Path:
    """Where lab-up writes configs, certificates, pid files and logs (gitignored)."""
    return Path(os.environ.get("CP_LAB_STATE", str(REPO / "lab-state"))).resolve()


@dataclass(frozen=True)
class Site:
    """One lab name with its real server address and how the censor treats it."""

    name: str
    address: str
    title: str
    serves: tuple[str, ...]
    isp_dns: str | None = None  # "nxdomain" or the address the ISP resolver answers
    inject: str | None = None  # forged A record raced by the on-path injector
    censor: str | None = None  # technique applied in cp-isp
    large_path: str | None = None
    status: int = 200
    inet_drop: bool = False
    role: str = "site"
    page_kib: int = 0  # pad index.html to about this many KiB (0: the short page)


@dataclass(frozen=True)
class Scenario:
    """A named censorship case and the verdict a correct probe reaches."""

    id: str
    url: str
    technique: str
    failures: dict[str, str]
    blocking: bool | str | None
    accessible: bool | None
    x_outcome: str
    note: str = ""
    #: the [[run]] that measures it ("": the main run, every such scenario at once)
    run: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """A probe run of its own ([[run]]): its scenarios one after the other, in file order."""

    name: str
    #: the client link's rate for every site during the run (tc syntax), None: unchanged
    link: str | None = None
    note: str = ""


def load_runs(path: Path = SCENARIOS_FILE) -> list[Run]:
    """The [[run]] tables of scenarios.toml."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Run(**raw) for raw in data.get("run", [])]


@dataclass(frozen=True)
class Route:
    """One exact path of an app host and its answer."""

    path: str
    status: int
    type: str = "text/plain"
    body: str = ""
    location: str | None = None


@dataclass(frozen=True)
class AppHost:
    """One app API host of the lab ([[app_host]]): its server and how the censor treats it."""

    app: str
    name: str
    address: str
    listen: tuple[str, ...] = ()  # "https:443", "http:80", "http:443" (plain), "https:5222"
    ca: str = "lab"  # "lab" or "signal"
    status: int = 404  # the answer for every path not in routes
    routes: tuple[Route, ...] = ()
    isp_dns: str | None = None
    censor: str | None = None  # as Site.censor, plus "tls-mitm"
    inet_drop: bool = False
    dns_only: bool = False

    @property
    def ports(self) -> tuple[tuple[str, int], ...]:
        """(scheme, port) of every listener."""
        out = []
        for item in self.listen:
            scheme, _, port = item.partition(":")
            out.append((scheme, int(port)))
        return tuple(out)

    def site(self) -> Site:
        """The censor's and the DNS servers' view of this host (the rules shared with sites)."""
        return Site(
            name=self.name,
            address=self.address,
            title=f"{self.app} app host",
            serves=(),
            isp_dns=self.isp_dns,
            censor=self.censor,
            inet_drop=self.inet_drop,
            role="app",
        )


def load_app_hosts(path: Path = SCENARIOS_FILE) -> list[AppHost]:
    """The [[app_host]] tables of scenarios.toml."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    hosts = []
    for raw in data.get("app_host", []):
        routes = tuple(Route(**r) for r in raw.get("routes", ()))
        hosts.append(AppHost(**{**raw, "listen": tuple(raw.get("listen", ())), "routes": routes}))
    return hosts


@dataclass(frozen=True)
class AppScenario:
    """An app file run from cp-client and the per-host and per-app verdicts of a correct probe."""

    id: str
    app_file: str  # relative to APPS_DIR
    technique: str
    x_app_verdict: str
    x_outcome: str
    x_anomaly: bool | None
    hosts: dict[str, str]  # host id -> outcome of each of its rows
    ooni: dict[str, Any]

    @property
    def path(self) -> Path:
        return APPS_DIR / self.app_file


def load_app_scenarios(path: Path = SCENARIOS_FILE) -> list[AppScenario]:
    """The [[app_scenario]] tables of scenarios.toml ("null" strings become None)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for raw in data.get("app_scenario", []):
        ooni = {k: _null(v) for k, v in raw.get("ooni", {}).items()}
        out.append(AppScenario(**{**raw, "x_anomaly": _null(raw["x_anomaly"]), "ooni": ooni}))
    return out


def _null(value: Any) -> Any:
    return None if value == "null" else value


@dataclass(frozen=True)
class PacketScenario:
    """A packet-level follow-up from cp-client and where a correct probe places the censor."""

    id: str
    url: str
    stage: str  # "tls", "http" or "dns"
    address: str  # the server's IP (tls, http) or the resolver's "ip:port" (dns)
    censor_hop: int  # 0: no censor
    reaction: str | None
    placement: str | None
    injection: bool
    path_length: int  # 0: the server never answers
    outcome: str | None  # x_censors[0].status (None: nothing traced)
    x_outcome: str  # the censor_trace verdict
    max_packets: int | None = None  # a cap below the default (probe packet --max-packets)

    @property
    def host(self) -> str:
        return self.url.split("/")[2]


def load_packet_scenarios(path: Path = SCENARIOS_FILE) -> list[PacketScenario]:
    """The [[packet_scenario]] tables of scenarios.toml ("null" strings become None)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        PacketScenario(**{k: _null(v) for k, v in raw.items()})
        for raw in data.get("packet_scenario", [])
    ]


def load(path: Path = SCENARIOS_FILE) -> tuple[list[Site], list[Scenario]]:
    """Parse scenarios.toml into sites and scenarios."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    sites = [
        Site(**{**raw, "serves": tuple(raw.get("serves", ()))}) for raw in data.get("site", [])
    ]
    scenarios = []
    for raw in data.get("scenario", []):
        raw = dict(raw)
        raw["blocking"] = _null(raw["blocking"])
        raw["accessible"] = _null(raw["accessible"])
        known = {f for f in Scenario.__dataclass_fields__ if f != "extra"}
        extra = {k: raw.pop(k) for k in list(raw) if k not in known}
        scenarios.append(Scenario(**raw, extra=extra))
    return sites, scenarios


def site_by_name(sites: list[Site], name: str) -> Site:
    for site in sites:
        if site.name == name:
            return site
    raise KeyError(name)
