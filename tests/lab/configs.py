"""Render the lab's server and censor configurations from the sites of scenarios.toml.

Pure functions returning text (nginx, unbound, dnsmasq argv, iptables-restore input, tc argv);
lab.py writes them under the state directory and starts the real Debian daemons with them.
"""

from __future__ import annotations

from pathlib import Path

from probe.runfacts import CANARY_SUFFIX
from tests.lab import model as m
from tests.lab.model import Site

_NGINX_HEAD = """\
worker_processes 1;
user root;
daemon off;
pid {state}/run/{tag}-nginx.pid;
error_log {state}/logs/{tag}-nginx.error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log {state}/logs/{tag}-nginx.access.log;
  client_body_temp_path {state}/run/{tag}-body;
  proxy_temp_path {state}/run/{tag}-proxy;
  fastcgi_temp_path {state}/run/{tag}-fastcgi;
  uwsgi_temp_path {state}/run/{tag}-uwsgi;
  scgi_temp_path {state}/run/{tag}-scgi;
  types {{ text/html html; application/octet-stream bin; }}
  default_type text/html;
  charset utf-8;
  server_tokens off;
  ssl_protocols TLSv1.2 TLSv1.3;
"""


def nginx_head(state: Path, tag: str) -> str:
    """The top of an nginx config (paths under ``state``, files named after ``tag``)."""
    return _NGINX_HEAD.format(state=state, tag=tag)


def _listen(address: str, scheme: str) -> str:
    return f"listen {address}:443 ssl;" if scheme == "https" else f"listen {address}:80;"


def site_addresses(site: Site) -> tuple[str, ...]:
    """Every address that serves ``site`` in cp-inet (the geo CDN has two)."""
    extra = site.isp_dns if site.isp_dns and site.isp_dns.startswith("198.19.1.") else None
    return (site.address, extra) if extra else (site.address,)


def index_html(site: Site) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{site.title}</title></head>\n<body>\n<h1>{site.title}</h1>\n"
        f"<p>This is {site.name}, a site of the censorprobe lab served by nginx in cp-inet.</p>\n"
        f"<p>Its only job is to be measured; the censor in cp-isp may treat it differently.</p>\n"
        f"{_padding(site.page_kib)}</body></html>\n"
    )


def _padding(kib: int) -> str:
    """Paragraphs that bring a page to about ``kib`` KiB (a realistic page, not a stub)."""
    line = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 2 + "</p>\n"
    return line * ((kib * 1024) // len(line))


def nginx_inet(sites: list[Site], state: Path) -> str:
    out = [_NGINX_HEAD.format(state=state, tag="inet")]
    for site in sites:
        if site.role != "site":
            continue
        for address in site_addresses(site):
            for scheme in site.serves:
                out.append("  server {\n")
                out.append(f"    {_listen(address, scheme)}\n    server_name {site.name};\n")
                if scheme == "https":
                    out.append(f"    ssl_certificate {state}/pki/{site.name}.pem;\n")
                    out.append(f"    ssl_certificate_key {state}/pki/{site.name}.key;\n")
                    if site.large_path:
                        # 4 KiB TLS records (like servers with dynamic record sizing): at a
                        # throttled rate whole 16 KiB records complete too rarely to show the
                        # slow but steady transfer within the probe's HTTP timeout
                        out.append("    ssl_buffer_size 4k;\n")
                out.append(f"    root {state}/www/{site.name};\n")
                if site.status != 200:
                    out.append(f"    error_page {site.status} /index.html;\n")
                    out.append("    location = /index.html { internal; }\n")
                    out.append(f"    location / {{ return {site.status}; }}\n")
                else:
                    out.append("    location / { index index.html; }\n")
                out.append("  }\n")
    out.append("}\n")
    return "".join(out)


def nginx_isp(sites: list[Site], state: Path) -> str:
    """The ISP's blockpage server (198.18.2.10) and its transparent proxy (198.18.2.80)."""
    warning = next(s for s in sites if s.role == "isp-blockpage")
    blockpage = (
        f"    root {state}/www/blockpage;\n    location / {{ try_files /blockpage.html =404; }}\n"
    )
    out = [_NGINX_HEAD.format(state=state, tag="isp")]
    out.append(f"  server {{\n    listen {m.ISP_BLOCKPAGE}:80 default_server;\n{blockpage}  }}\n")
    out.append(
        f"  server {{\n    listen {m.ISP_BLOCKPAGE}:443 ssl default_server;\n"
        f"    ssl_certificate {state}/pki/{warning.name}.pem;\n"
        f"    ssl_certificate_key {state}/pki/{warning.name}.key;\n{blockpage}  }}\n"
    )
    out.append(f"  server {{\n    listen {m.ISP_TPROXY}:80 default_server;\n{blockpage}  }}\n")
    for site in sites:
        if site.censor == "tproxy-redirect":
            out.append(
                f"  server {{\n    listen {m.ISP_TPROXY}:80;\n    server_name {site.name};\n"
                f"    location / {{ return 302 http://{warning.name}/?id=lab&host=$host; }}\n  }}\n"
            )
    out.append("}\n")
    return "".join(out)


def unbound_auth(sites: list[Site], state: Path) -> str:
    """Authoritative answers for lab.test (unbound local-zone static)."""
    data = [
        f'  local-data: "{m.LAB_ZONE}. 3600 IN SOA ns.{m.LAB_ZONE}. hostmaster.{m.LAB_ZONE}. '
        '1 3600 600 86400 300"',
        f'  local-data: "{m.LAB_ZONE}. 3600 IN NS ns.{m.LAB_ZONE}."',
        f'  local-data: "ns.{m.LAB_ZONE}. 3600 IN A {m.AUTH_DNS}"',
        f'  local-data: "resolver.{m.LAB_ZONE}. 3600 IN A {m.PUBLIC_RESOLVER}"',
    ]
    data += [f'  local-data: "{s.name}. 300 IN A {s.address}"' for s in sites]
    return _unbound_common(m.AUTH_DNS, state, "auth") + (
        f'  local-zone: "{m.LAB_ZONE}." static\n' + "\n".join(data) + "\n"
    )


def unbound_public(state: Path) -> str:
    """The uncensored public resolver: recursive, lab.test via the authoritative server only."""
    return _unbound_common(m.PUBLIC_RESOLVER, state, "public") + (
        '  local-zone: "." refuse\n'
        f'  local-zone: "{m.LAB_ZONE}." transparent\n'
        f'stub-zone:\n  name: "{m.LAB_ZONE}."\n  stub-addr: {m.AUTH_DNS}\n'
    )


def _unbound_common(address: str, state: Path, tag: str) -> str:
    return (
        "server:\n"
        f"  interface: {address}\n  port: 53\n  do-ip6: no\n  num-threads: 1\n"
        "  access-control: 198.18.0.0/15 allow\n  access-control: 127.0.0.0/8 allow\n"
        f'  username: ""\n  chroot: ""\n  directory: "{state}"\n  pidfile: ""\n'
        f'  use-syslog: no\n  logfile: "{state}/logs/{tag}-dns.log"\n  verbosity: 1\n'
        '  module-config: "iterator"\n  do-not-query-localhost: no\n'
        "remote-control:\n  control-enable: no\nserver:\n"
    )


def dnsmasq_isp_argv(sites: list[Site], state: Path) -> list[str]:
    """The ISP resolver: forwards lab.test to the authoritative server, lies per isp_dns, and
    rewrites every name of the probe's NXDOMAIN canary TLD (probe.runfacts) to its own address,
    as an ISP that sends every name that does not exist to its search page does."""
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        f"--listen-address={m.ISP_RESOLVER}",
        "--bind-interfaces",
        "--port=53",
        "--user=root",
        "--group=root",
        "--pid-file=",
        f"--log-facility={state}/logs/isp-dns.log",
        "--log-queries",
        f"--server=/{m.LAB_ZONE}/{m.AUTH_DNS}",
        f"--address=/{CANARY_SUFFIX}/{m.ISP_RESOLVER}",
    ]
    for site in sites:
        if site.isp_dns == "nxdomain":
            argv.append(f"--address=/{site.name}/")
        elif site.isp_dns:
            argv.append(f"--address=/{site.name}/{site.isp_dns}")
    return argv


def iptables_isp(sites: list[Site], *, delay_ms: float) -> str:
    """The censor: raw (DNS notrack + injection queue), mangle (delay), nat (DNAT), filter."""
    raw = [
        "*raw",
        # DNS is stateless here: the forged answer and the real exchange must not clash in
        # conntrack (a queued query is unconfirmed when the forged reply leaves).
        "-A PREROUTING -p udp --dport 53 -j CT --notrack",
        "-A PREROUTING -p udp --sport 53 -j CT --notrack",
        "-A OUTPUT -p udp --dport 53 -j CT --notrack",
        "-A OUTPUT -p udp --sport 53 -j CT --notrack",
    ]
    for site in sites:
        if site.censor in ("syn-rst", "icmp-host-unreachable", "icmp-port-unreachable"):
            # REJECT answers a packet whose conntrack entry is still unconfirmed; with the
            # LAB_DELAY_MS queue on the way out, nfqueue drops such replies. Untracked, they pass.
            raw.append(f"-A PREROUTING -d {site.address} -j CT --notrack")
        if site.inject:
            label = site.name.split(".", 1)[0]
            raw.append(
                f"-A PREROUTING -i {m.ISP_CLIENT_IF} -p udp --dport 53 -m string --algo bm "
                f'--icase --string "{label}" -j NFQUEUE --queue-num {m.INJECT_QUEUE} --queue-bypass'
            )
    mangle = ["*mangle", *_mangle_sni_throttle(sites)]
    if delay_ms > 0:
        mangle += [
            f"-A PREROUTING -i {m.ISP_CLIENT_IF} -j NFQUEUE --queue-num {m.DELAY_QUEUE} "
            "--queue-bypass",
            f"-A POSTROUTING -o {m.ISP_CLIENT_IF} -j NFQUEUE --queue-num {m.DELAY_QUEUE} "
            "--queue-bypass",
        ]
    nat = ["*nat"]
    # the collector blocked on one of its ports (model.COLLECTOR_BLOCKED_PORT): SYNs dropped
    filt = [
        "*filter",
        f"-A FORWARD -d {m.CONTROL_ADDR} -p tcp --dport {m.COLLECTOR_BLOCKED_PORT} -j DROP",
    ]
    for s in sites:
        if s.censor in ("tproxy-blockpage", "tproxy-redirect"):
            nat.append(
                f"-A PREROUTING -i {m.ISP_CLIENT_IF} -d {s.address} -p tcp --dport 80 "
                f"-j DNAT --to-destination {m.ISP_TPROXY}:80"
            )
        elif s.censor == "tls-mitm":
            nat.append(
                f"-A PREROUTING -i {m.ISP_CLIENT_IF} -d {s.address} -p tcp --dport 443 "
                f"-j DNAT --to-destination {m.ISP_MITM}:443"
            )
        elif s.censor == "ip-drop":
            filt.append(f"-A FORWARD -d {s.address} -j DROP")
        elif s.censor == "syn-rst":
            filt.append(f"-A FORWARD -d {s.address} -p tcp --syn -j REJECT --reject-with tcp-reset")
        elif s.censor in ("icmp-host-unreachable", "icmp-port-unreachable"):
            kind = s.censor
            filt.append(f"-A FORWARD -d {s.address} -j REJECT --reject-with {kind}")
        elif s.censor == "sni-rst":
            filt.append(
                f'-A FORWARD -p tcp --dport 443 -m string --algo bm --string "{s.name}" '
                "-j REJECT --reject-with tcp-reset"
            )
        elif s.censor == "sni-drop":
            filt.append(
                f'-A FORWARD -p tcp --dport 443 -m string --algo bm --string "{s.name}" -j DROP'
            )
        elif s.censor == "host-rst":
            filt.append(
                f"-A FORWARD -p tcp --dport 80 -m string --algo bm --icase "
                f'--string "Host: {s.name}" -j REJECT --reject-with tcp-reset'
            )
    return "\n".join([*raw, "COMMIT", *mangle, "COMMIT", *nat, "COMMIT", *filt, "COMMIT", ""])


def iptables_border(sites: list[Site]) -> str:
    """cp-border: a stateless router (no conntrack) whose on-path injector sees the triggers.

    The queue rule sits in raw PREROUTING, before the routing decision and its TTL check: a
    packet that expires here (sent with TTL 3 from cp-client) is seen too, so the injector reacts
    from hop 3 on, while the expired original still earns the client an ICMP time exceeded from
    this router (an on-path device: it copies, it does not hold the packet back).
    """
    raw = [
        "*raw",
        "-A PREROUTING -j CT --notrack",
        "-A OUTPUT -j CT --notrack",
    ]
    queue = f"-j NFQUEUE --queue-num {m.BORDER_QUEUE} --queue-bypass"
    for s in sites:
        if s.censor == "border-sni-rst":
            raw.append(
                f"-A PREROUTING -i {m.BORDER_TRANSIT_IF} -p tcp --dport 443 -m string --algo bm "
                f'--string "{s.name}" {queue}'
            )
        elif s.censor == "border-blockpage":
            raw.append(
                f"-A PREROUTING -i {m.BORDER_TRANSIT_IF} -p tcp --dport 80 -m string --algo bm "
                f'--icase --string "Host: {s.name}" {queue}'
            )
    return "\n".join([*raw, "COMMIT", "*filter", "COMMIT", ""])


def tcpinject_args(sites: list[Site]) -> list[str]:
    """The border injector's rules (tests/lab/tcpinject.py) for the border censor kinds."""
    out = []
    for s in sites:
        if s.censor == "border-sni-rst":
            out.append(f"--rst={s.name}")
        elif s.censor == "border-blockpage":
            out.append(f"--blockpage={s.name}")
    return out


def iptables_inet(sites: list[Site]) -> str:
    """The servers' own firewall: blackholed addresses, and the sites that reset a ClientHello
    naming them when it comes from outside cp-inet (server-side geoblocking: the control
    vantage, in cp-inet, gets through)."""
    rules = [f"-A INPUT -d {s.address} -j DROP" for s in sites if s.inet_drop]
    for s in sites:
        if s.censor == "server-sni-rst":
            rules.append(
                f"-A INPUT -i {m.INET_IF} -d {s.address} -p tcp --dport 443 -m string --algo bm "
                f'--string "{s.name}" -j REJECT --reject-with tcp-reset'
            )
    return "\n".join(["*filter", *rules, "COMMIT", ""])


def tc_isp(sites: list[Site]) -> list[list[str]]:
    """htb on both ISP links: throttled servers get a 64 kbit/s class in each direction.

    The senders' veths have GSO limited to one segment (lab.py): a 64 KiB GSO packet would
    otherwise cross the throttled class as one unit.
    """
    cmds: list[list[str]] = []
    throttled = [s.address for s in sites if s.censor == "throttle"]
    if not throttled:
        return cmds
    for dev, match in ((m.ISP_CLIENT_IF, "src"), (m.ISP_INET_IF, "dst")):
        cmds += [
            ["tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10"],
            [
                "tc",
                "class",
                "add",
                "dev",
                dev,
                "parent",
                "1:",
                "classid",
                "1:10",
                "htb",
                "rate",
                "10gbit",
            ],
            [
                "tc",
                "class",
                "add",
                "dev",
                dev,
                "parent",
                "1:",
                "classid",
                "1:20",
                "htb",
                "rate",
                m.THROTTLE_RATE,
                "ceil",
                m.THROTTLE_RATE,
                "burst",
                "1600",
                "cburst",
                "1600",
            ],
        ]
        # a short leaf queue (8000 bytes): above the rate packets are dropped (a policer, as
        # TSPU does), a burst of small handshake packets still fits, and no deep backlog delays
        # the next connection's handshake for more than ~4 s
        cmds.append(
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "parent",
                "1:20",
                "handle",
                "20:",
                "bfifo",
                "limit",
                "8000",
            ]
        )
        cmds += _tc_sni_throttle(sites, dev)
        for address in throttled:
            cmds.append(
                [
                    "tc",
                    "filter",
                    "add",
                    "dev",
                    dev,
                    "parent",
                    "1:",
                    "protocol",
                    "ip",
                    "prio",
                    "1",
                    "u32",
                    "match",
                    "ip",
                    match,
                    f"{address}/32",
                    "flowid",
                    "1:20",
                ]
            )
    return cmds


# --- SNI-triggered throttling (issue 16): a TSPU-like cap keyed on the TLS server name -------

#: the cap of censor "throttle-sni": a few kbit/s, in each direction (Twitter in Russia, 2021,
#: was capped at 130-150 kbit/s; lower here so that a page of a few KiB takes seconds)
SNI_THROTTLE_RATE = "8kbit"
#: the connection mark of a flow whose ClientHello named a "throttle-sni" site
SNI_THROTTLE_MARK = "0x10"


def _mangle_sni_throttle(sites: list[Site]) -> list[str]:
    """Mark a connection when its ClientHello (client to server, port 443) carries the name of
    a "throttle-sni" site; every packet of a marked connection, both ways, is then classified
    into the capped htb class (CLASSIFY sets the class the htb of tc_isp uses directly). An
    innocuous SNI to the same address is not capped (the trigger is the name, as TSPU's).

    Not a tc filter on the mark: without CONFIG_CLS_U32_MARK a ``u32 match mark`` filter
    matches every packet, and the ``fw`` classifier is not built into every kernel."""
    rules = []
    for s in sites:
        if s.censor == "throttle-sni":
            rules.append(
                f"-A FORWARD -i {m.ISP_CLIENT_IF} -p tcp --dport 443 -m string --algo bm "
                f'--string "{s.name}" -j CONNMARK --set-mark {SNI_THROTTLE_MARK}'
            )
    if rules:
        rules.append(
            f"-A FORWARD -m connmark --mark {SNI_THROTTLE_MARK} -j CLASSIFY --set-class 1:30"
        )
    return rules


def _tc_sni_throttle(sites: list[Site], dev: str) -> list[list[str]]:
    """Class 1:30 at SNI_THROTTLE_RATE on ``dev`` (a child of the root htb of tc_isp) with a
    short drop-tail queue (a policer, as TSPU drops over the rate); the packets get there by
    their CLASSIFY priority (_mangle_sni_throttle), no filter."""
    if not any(s.censor == "throttle-sni" for s in sites):
        return []
    rate = SNI_THROTTLE_RATE
    return [
        ["tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:30", "htb",
         "rate", rate, "ceil", rate, "burst", "1600", "cburst", "1600"],
        ["tc", "qdisc", "add", "dev", dev, "parent", "1:30", "handle", "30:", "bfifo",
         "limit", "4000"],
    ]  # fmt: skip
