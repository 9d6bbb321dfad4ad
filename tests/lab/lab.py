"""Bring the censorship lab up and down: namespaces, links, servers, censor, recorded processes.

    cp-client (198.18.0.2) --veth-- cp-isp (hop 1: router, ISP resolver, censor) --veth--
    cp-transit (hop 2: plain router) --veth-- cp-border (hop 3: router, on-path injector)
    --veth-- cp-inet (hop 4: authoritative DNS, web sites and app API hosts on distinct
    addresses, public resolver, control vantage)

Only 198.18.0.0/15 is routed, there is no default route and no NAT to the host: nothing leaves
the namespaces. ``up`` is a clean restart (it runs ``down`` first); ``down`` removes the
namespaces, veths, /etc/netns entries and every process recorded under the state directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.lab import applab, configs, pki, procs
from tests.lab import model as m

ETC_NETNS = Path("/etc/netns")


class LabError(RuntimeError):
    """The lab could not be brought up (the message says which step failed)."""


def sh(
    *argv: str, netns: str | None = None, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def namespaces_present() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    present = {line.split()[0] for line in out.splitlines() if line.strip()}
    return [ns for ns in m.NAMESPACES if ns in present]


def down(state: Path | None = None) -> list[str]:
    """Remove everything the lab created; safe to run at any time. Returns what it did."""
    state = state or m.state_dir()
    done = [f"stopped {name}" for name in procs.stop_all(state)] if state.exists() else []
    for ns in namespaces_present():
        sh("ip", "netns", "del", ns, check=False)
        done.append(f"deleted netns {ns}")
    for ns in m.NAMESPACES:
        if (ETC_NETNS / ns).exists():
            shutil.rmtree(ETC_NETNS / ns)
            done.append(f"removed {ETC_NETNS / ns}")
    # a veth whose peer namespace vanished disappears with it; nothing is left in the host netns
    (state / "lab.json").unlink(missing_ok=True)
    done += applab.remove_generated()
    return done


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _prepare_files(state: Path, sites: list[m.Site], hosts: list[m.AppHost]) -> Path:
    """Certificates, web roots and daemon configs; returns the CA file."""
    for sub in ("pki", "www", "conf", "logs", "run", "pids"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key, ca_file = pki.make_ca(state / "pki")
    applab.prepare(state, hosts, lab_ca=(ca_cert, ca_key))
    for site in sites:
        pki.issue(
            ca_cert,
            ca_key,
            state / "pki",
            site.name,
            addresses=(site.address, *configs.site_addresses(site)[1:]),
        )
        root = state / "www" / site.name
        _write(root / "index.html", configs.index_html(site))
        if site.large_path:
            (root / site.large_path.lstrip("/")).write_bytes(os.urandom(m.LARGE_OBJECT_SIZE))
    _write(
        state / "www" / "blockpage" / "blockpage.html",
        (m.HERE / "www" / "blockpage.html").read_text(encoding="utf-8"),
    )
    _write(state / "conf" / "inet-nginx.conf", configs.nginx_inet(sites, state))
    _write(state / "conf" / "isp-nginx.conf", configs.nginx_isp(sites, state))
    named = [*sites, *applab.app_sites(hosts)]
    _write(state / "conf" / "auth-dns.conf", configs.unbound_auth(named, state))
    _write(state / "conf" / "public-dns.conf", configs.unbound_public(state))
    write_asn_db(asn_db_path(state))
    return ca_file


def asn_db_path(state: Path) -> Path:
    """The lab's ASN database (``m.LAB_ASNS``), for ``probe packet --asn-db``."""
    return state / "geoip" / "asn.mmdb"


def write_asn_db(path: Path) -> None:
    """Write ``m.LAB_ASNS`` as a MaxMind-format ASN database (the dev extra's mmdb-writer)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="censorprobe-lab-ASN", ipv4_compatible=True)
    for cidr, asn, name in m.LAB_ASNS:
        writer.insert_network(
            IPSet([cidr]),
            {"autonomous_system_number": asn, "autonomous_system_organization": name},
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))


def _network(sites: list[m.Site], hosts: list[m.AppHost], *, delay_ms: float) -> None:
    for ns in m.NAMESPACES:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", netns=ns)
        for key in ("all", "default", "lo"):
            sh("sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1", netns=ns)
    for link in m.LINKS:
        sh(
            "ip",
            "link",
            "add",
            link.a_if,
            "netns",
            link.a_ns,
            "type",
            "veth",
            "peer",
            "name",
            link.b_if,
            "netns",
            link.b_ns,
        )
        for ns, dev, addr in (
            (link.a_ns, link.a_if, link.a_addr),
            (link.b_ns, link.b_if, link.b_addr),
        ):
            sh("ip", "addr", "add", f"{addr}/24", "dev", dev, netns=ns)
            sh("ip", "link", "set", dev, "up", netns=ns)
    # one TCP segment per packet from the senders, so that tc sees packets, not 64 KiB GSO trains
    for ns, dev in ((m.NS_CLIENT, m.CLIENT_IF), (m.NS_INET, m.INET_IF)):
        sh("ip", "link", "set", "dev", dev, "gso_max_size", "1500", "gso_max_segs", "1", netns=ns)
    for addr in (m.ISP_RESOLVER, m.ISP_BLOCKPAGE, m.ISP_TPROXY, m.ISP_MITM):
        sh("ip", "addr", "add", f"{addr}/32", "dev", "lo", netns=m.NS_ISP)
    inet_addrs = {m.AUTH_DNS, m.PUBLIC_RESOLVER, m.CONTROL_ADDR}
    for site in sites:
        if site.role == "site":
            inet_addrs.update(configs.site_addresses(site))
    inet_addrs.update(h.address for h in applab.served(hosts))
    for addr in sorted(inet_addrs):
        sh("ip", "addr", "add", f"{addr}/32", "dev", "lo", netns=m.NS_INET)
    for ns, destination, gateway in m.ROUTES:
        sh("ip", "route", "add", destination, "via", gateway, netns=ns)
    for ns in m.ROUTERS:
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=ns)
        # every router answers every expired packet (real ones rate-limit ICMP: docs/packet.md)
        sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", netns=ns)
    censored = [*sites, *applab.app_sites(hosts)]
    sh(
        "iptables-restore",
        netns=m.NS_ISP,
        stdin=configs.iptables_isp(censored, delay_ms=delay_ms),
    )
    sh("iptables-restore", netns=m.NS_BORDER, stdin=configs.iptables_border(censored))
    sh("iptables-restore", netns=m.NS_INET, stdin=configs.iptables_inet(censored))
    for cmd in configs.tc_isp(sites):
        sh(*cmd, netns=m.NS_ISP)
    for ns, resolver in (
        (m.NS_CLIENT, m.ISP_RESOLVER),
        (m.NS_ISP, m.ISP_RESOLVER),
        (m.NS_INET, m.PUBLIC_RESOLVER),
    ):
        _write(ETC_NETNS / ns / "resolv.conf", f"nameserver {resolver}\n")


def _nginx(name: str, netns: str, state: Path) -> None:
    """Start the nginx whose config is ``conf/<name>.conf``, as the recorded process ``name``."""
    conf = state / "conf" / f"{name}.conf"
    procs.start(name, ["nginx", "-c", str(conf), "-p", str(state)], netns=netns, state=state)


def _python() -> str:
    venv = m.REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _start_daemons(
    sites: list[m.Site], hosts: list[m.AppHost], state: Path, *, delay_ms: float
) -> None:
    conf = state / "conf"
    env = {**os.environ, "PYTHONPATH": str(m.REPO)}
    procs.start(
        "auth-dns",
        ["unbound", "-d", "-c", str(conf / "auth-dns.conf")],
        netns=m.NS_INET,
        state=state,
    )
    procs.start(
        "public-dns",
        ["unbound", "-d", "-c", str(conf / "public-dns.conf")],
        netns=m.NS_INET,
        state=state,
    )
    _nginx("inet-nginx", m.NS_INET, state)
    _nginx("apps-nginx", m.NS_INET, state)
    named = [*sites, *applab.app_sites(hosts)]
    procs.start("isp-dns", configs.dnsmasq_isp_argv(named, state), netns=m.NS_ISP, state=state)
    if applab.mitm_hosts(hosts):
        _nginx("mitm-nginx", m.NS_ISP, state)
    _nginx("isp-nginx", m.NS_ISP, state)
    forge = [f"--forge={s.name}={s.inject}" for s in sites if s.inject]
    procs.start(
        "injector",
        [_python(), "-m", "tests.lab.injector", f"--queue={m.INJECT_QUEUE}", *forge],
        netns=m.NS_ISP,
        state=state,
        env=env,
    )
    procs.start(
        "border-injector",
        [
            _python(),
            "-m",
            "tests.lab.tcpinject",
            f"--queue={m.BORDER_QUEUE}",
            f"--blockpage-file={m.HERE / 'www' / 'blockpage.html'}",
            *configs.tcpinject_args(sites),
        ],
        netns=m.NS_BORDER,
        state=state,
        env=env,
    )
    if delay_ms > 0:
        procs.start(
            "delay",
            [_python(), "-m", "tests.lab.delay", f"--queue={m.DELAY_QUEUE}", f"--ms={delay_ms}"],
            netns=m.NS_ISP,
            state=state,
            env=env,
        )


def listening(netns: str) -> set[str]:
    """``proto:addr:port`` of every listening socket in ``netns`` (from ss)."""
    out = sh("ss", "-Hltun", netns=netns, check=False).stdout
    found = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            found.add(f"{fields[0]}:{fields[4]}")
    return found


def bound_queues() -> set[int]:
    found = set()
    for ns in (m.NS_ISP, m.NS_BORDER):
        text = sh("cat", "/proc/net/netfilter/nfnetlink_queue", netns=ns, check=False).stdout
        found |= {int(line.split()[0]) for line in text.splitlines() if line.strip()}
    return found


def expected_listeners(
    sites: list[m.Site], hosts: list[m.AppHost] | None = None
) -> dict[str, set[str]]:
    inet = {f"udp:{m.AUTH_DNS}:53", f"udp:{m.PUBLIC_RESOLVER}:53"}
    for site in sites:
        if site.role == "site":
            for address in configs.site_addresses(site):
                for scheme in site.serves:
                    inet.add(f"tcp:{address}:{443 if scheme == 'https' else 80}")
    isp = {
        f"udp:{m.ISP_RESOLVER}:53",
        f"tcp:{m.ISP_BLOCKPAGE}:80",
        f"tcp:{m.ISP_BLOCKPAGE}:443",
        f"tcp:{m.ISP_TPROXY}:80",
    }
    apps = applab.listeners(hosts or [])
    return {m.NS_INET: inet | apps[m.NS_INET], m.NS_ISP: isp | apps[m.NS_ISP]}


def _wait_ready(
    sites: list[m.Site], hosts: list[m.AppHost], state: Path, *, delay_ms: float, timeout: float
) -> None:
    want = expected_listeners(sites, hosts)
    queues = {m.INJECT_QUEUE, m.BORDER_QUEUE} | ({m.DELAY_QUEUE} if delay_ms > 0 else set())
    deadline = time.monotonic() + timeout
    while True:
        missing = {ns: sorted(w - listening(ns)) for ns, w in want.items()}
        missing = {ns: v for ns, v in missing.items() if v}
        missing_queues = queues - bound_queues()
        dead = [n for n, (pid, t) in procs.recorded(state).items() if not procs.alive(pid, t)]
        if dead:
            raise LabError(f"daemons exited: {dead}; see {state}/logs/")
        if not missing and not missing_queues:
            return
        if time.monotonic() > deadline:
            raise LabError(
                f"not ready after {timeout}s: listeners {missing}, "
                f"nfqueues {sorted(missing_queues)}; see {state}/logs/"
            )
        time.sleep(0.05)


def facts(state: Path, *, delay_ms: float = 0.0) -> dict[str, Any]:
    """What the probe (and the Makefile's demo) needs to know about the lab."""
    _sites, scenarios = m.load()
    return {
        "namespaces": {"client": m.NS_CLIENT, "isp": m.NS_ISP, "inet": m.NS_INET},
        "client_address": m.CLIENT_ADDR,
        "resolver": f"{m.ISP_RESOLVER}:53",
        "public_resolver": f"{m.PUBLIC_RESOLVER}:53",
        "ca_file": str(state / "pki" / "ca.pem"),
        "control_url": f"https://{m.CONTROL_NAME}:{m.CONTROL_PORT}/",
        "control_listen": f"{m.CONTROL_ADDR}:{m.CONTROL_PORT}",
        "public_ranges": list(m.PUBLIC_RANGES),
        "targets": [s.url for s in scenarios],
        "app_files": sorted(str(p) for p in m.APPS_DIR.glob("*.toml")),
        "signal_ca_file": str(m.SIGNAL_CA_FILE),
        "scenarios_file": str(m.SCENARIOS_FILE),
        "state_dir": str(state),
        "delay_ms": delay_ms,
        "asn_db": str(asn_db_path(state)),
        "client_asn": m.CLIENT_ASN,
        "hops": {str(hop): address for hop, address in m.HOPS.items()},
        "path_length": m.PATH_LENGTH,
    }


def up(
    state: Path | None = None, *, delay_ms: float = 0.0, timeout: float = 20.0
) -> dict[str, Any]:
    """Clean (re)start of the lab; on any failure everything is torn down again."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, iptables, tc)")
    state = state or m.state_dir()
    started = time.monotonic()
    down(state)
    for sub in ("conf", "logs", "run", "www", "pki", "geoip"):
        shutil.rmtree(state / sub, ignore_errors=True)
    sites, _ = m.load()
    hosts = m.load_app_hosts()
    try:
        _prepare_files(state, sites, hosts)
        _network(sites, hosts, delay_ms=delay_ms)
        _start_daemons(sites, hosts, state, delay_ms=delay_ms)
        _wait_ready(sites, hosts, state, delay_ms=delay_ms, timeout=timeout)
    except BaseException:
        down(state)
        raise
    info = facts(state, delay_ms=delay_ms)
    info["setup_seconds"] = round(time.monotonic() - started, 2)
    _write(state / "lab.json", json.dumps(info, indent=2) + "\n")
    return info


def status(state: Path | None = None) -> dict[str, Any]:
    """Namespaces present, recorded processes alive, whether the lab is fully up."""
    state = state or m.state_dir()
    present = namespaces_present()
    running = (
        {name: procs.alive(pid, t) for name, (pid, t) in procs.recorded(state).items()}
        if state.exists()
        else {}
    )
    up_file = state / "lab.json"
    complete = (
        up_file.exists()
        and present == list(m.NAMESPACES)
        and bool(running)
        and all(running.values())
    )
    return {"up": complete, "namespaces": present, "processes": running, "state_dir": str(state)}


def client_argv(argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` inside the client namespace."""
    return ["ip", "netns", "exec", m.NS_CLIENT, *argv]


def _accepts(netns: str, address: str, port: int) -> bool:
    """True once a TCP connect to address:port from inside ``netns`` succeeds (twice in a row)."""
    if f"tcp:{address}:{port}" not in listening(netns):
        return False
    code = (
        "import socket,time\n"
        "for _ in range(2):\n"
        f"    socket.create_connection(('{address}', {port}), timeout=1).close()\n"
        "    time.sleep(0.05)\n"
    )
    return sh(sys.executable, "-c", code, netns=netns, check=False).returncode == 0


def control_start(state: Path | None = None, *, timeout: float = 15.0) -> int:
    """Start ``probe helper serve`` in cp-inet as a recorded process; wait until it listens."""
    state = state or m.state_dir()
    procs.stop_one(state, "control")
    probe = m.REPO / ".venv" / "bin" / "probe"
    argv = [
        str(probe) if probe.exists() else "probe",
        "helper",
        "serve",
        "--listen",
        f"{m.CONTROL_ADDR}:{m.CONTROL_PORT}",
        "--lab-allow-ranges",
        ",".join(m.PUBLIC_RANGES),
        "--tls-cert",
        str(state / "pki" / f"{m.CONTROL_NAME}.pem"),
        "--tls-key",
        str(state / "pki" / f"{m.CONTROL_NAME}.key"),
        "--ca-file",
        str(state / "pki" / "ca.pem"),
        # one client (the lab's volunteer) runs benchmarks of thousands of targets
        "--rate-limit",
        "0",
        "--max-concurrency",
        "256",
    ]
    pid = procs.start("control", argv, netns=m.NS_INET, state=state)
    deadline = time.monotonic() + timeout
    while not _accepts(m.NS_INET, m.CONTROL_ADDR, m.CONTROL_PORT):
        pid_, ticks = procs.recorded(state)["control"]
        if not procs.alive(pid_, ticks) or time.monotonic() > deadline:
            procs.stop_one(state, "control")
            log = (state / "logs" / "control.out").read_text(errors="replace")[-2000:]
            raise LabError(
                f"control vantage does not accept on {m.CONTROL_ADDR}:{m.CONTROL_PORT}:\n{log}"
            )
        time.sleep(0.1)
    return pid
