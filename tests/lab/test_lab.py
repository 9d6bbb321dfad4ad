"""Wire-level checks of every censor mechanism of the lab (issue 3), from inside cp-client.

Marked ``lab``: they need root and network namespaces; under CI=true they fail loudly when they
cannot run. The pure checks at the end (scenario file, config rendering, injector packet
forging) run everywhere.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from pathlib import Path
from typing import Any

import dns.message
import dns.rdatatype
import pytest

from tests.lab import configs, tcpinject
from tests.lab import model as m
from tests.lab.fixtures import RunIn, wire
from tests.lab.injector import forge

SITES, SCENARIOS = m.load()
ADDR = {s.name: s.address for s in SITES}
BLOCKPAGE_TEXT = "Доступ к ресурсу ограничен"
OUTCOMES = {
    "dns/nxdomain",
    "dns/bogon",
    "dns/blockpage-ip",
    "dns/injected",
    "tcp/timeout",
    "tcp/refused",
    "tcp/icmp-unreachable",
    "tls/reset-after-clienthello",
    "tls/timeout-after-clienthello",
    "tls/mitm-certificate",
    "http/reset-after-request",
    "http/blockpage",
    "http/redirect-to-blockpage",
    "http/throttled",
    "http/slow-link",
    "down/everywhere",
    "down/server-error",
    "ok",
}


def kdig(run: RunIn, resolver: str, name: str) -> tuple[str, list[str]]:
    out = run("kdig", "+timeout=2", "+retry=0", f"@{resolver}", name, "A").stdout
    status = re.search(r"status: (\w+)", out)
    answers = re.findall(rf"^{re.escape(name)}\.\s+\d+\s+IN\s+A\s+(\S+)", out, re.M)
    return (status.group(1) if status else "NO-REPLY"), answers


def curl(run: RunIn, lab: dict[str, Any], url: str, *extra: str) -> tuple[int, str, str]:
    res = run("curl", "-sS", "-m", "10", "--cacert", lab["ca_file"], "-D", "-", *extra, url)
    head, _, body = res.stdout.partition("\n\n")  # text mode turned CRLF into LF
    code = int(head.split()[1]) if head.startswith("HTTP/") else 0
    return code, head, body


def title(body: str) -> str:
    found = re.search(r"<title>(.*?)</title>", body, re.S)
    return found.group(1) if found else ""


# --- topology ---------------------------------------------------------------------------------


@pytest.mark.lab
def test_nothing_is_routed_outside_the_lab(lab: dict[str, Any], run_in_client: RunIn) -> None:
    for ns in m.NAMESPACES:
        res = run_in_client("ip", "netns", "exec", ns, "ip", "-4", "route", "get", "8.8.8.8")
        assert res.returncode != 0, f"{ns} has a route to the outside: {res.stdout}"
    routes = run_in_client("ip", "-4", "route", "show").stdout
    assert "default" not in routes
    assert run_in_client("iptables", "-t", "nat", "-S", "POSTROUTING").stdout.strip() == (
        "-P POSTROUTING ACCEPT"
    )


@pytest.mark.lab
@pytest.mark.parametrize("name", ["ok.lab.test", "border-reset.lab.test"])
def test_the_path_crosses_three_routers(run_in_client: RunIn, name: str) -> None:
    """Hops 1-3 answer TTL expiry from their client-facing address; the server is hop 4."""
    hops = wire(run_in_client, "traceroute", ADDR[name], "--max", "8")["hops"]
    expected = [
        {"ttl": ttl, "from": m.HOPS[ttl], "icmp_type": 11} for ttl in range(1, m.PATH_LENGTH)
    ]
    expected.append({"ttl": m.PATH_LENGTH, "from": ADDR[name], "icmp_type": 3})
    assert hops == expected


@pytest.mark.lab
def test_every_router_answers_every_expiry(run_in_client: RunIn) -> None:
    """No ICMP rate limit in the lab's routers: ten expiries in a row, ten answers."""
    for _ in range(10):
        hops = wire(run_in_client, "traceroute", "198.19.1.1", "--max", "1")["hops"]
        assert hops == [{"ttl": 1, "from": m.ISP_CLIENT_ADDR, "icmp_type": 11}]


@pytest.mark.lab
def test_lab_asn_database(lab: dict[str, Any]) -> None:
    from probe.geo.db import GeoDatabases

    with GeoDatabases.open(asn_db=Path(lab["asn_db"]), country_db=Path(lab["asn_db"])) as dbs:
        assert dbs.lookup(m.HOPS[1]).asn == 64500
        assert dbs.lookup(m.HOPS[2]).asn == 64500
        assert dbs.lookup(m.HOPS[3]).asn == 64510
        assert dbs.lookup("198.19.1.1").asn == 64520
    assert lab["client_asn"] == "AS64500"


@pytest.mark.lab
def test_client_system_resolver_is_the_isp(lab: dict[str, Any], run_in_client: RunIn) -> None:
    assert run_in_client("cat", "/etc/resolv.conf").stdout.split() == [
        "nameserver",
        m.ISP_RESOLVER,
    ]
    assert run_in_client("getent", "hosts", "ok.lab.test").stdout.split()[0] == "198.19.1.1"
    assert lab["resolver"] == f"{m.ISP_RESOLVER}:53"
    assert lab["public_ranges"] == ["198.18.0.0/15"]


# --- 1 and 15: not censored -------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.parametrize("url", ["http://ok.lab.test/", "https://ok.lab.test/"])
def test_open_site(lab: dict[str, Any], run_in_client: RunIn, url: str) -> None:
    code, _, body = curl(run_in_client, lab, url)
    assert (code, title(body)) == (200, "Lab open site")


@pytest.mark.lab
def test_every_site_has_its_own_title(lab: dict[str, Any], run_in_inet: RunIn) -> None:
    titles = {}
    for site in SITES:
        if site.role == "site" and site.serves and not site.inet_drop:
            scheme = "https" if "https" in site.serves else "http"
            _, _, body = curl(run_in_inet, lab, f"{scheme}://{site.name}/")
            titles[site.name] = title(body)
    assert all(titles.values()), titles
    assert len(set(titles.values())) == len(titles)


@pytest.mark.lab
def test_503_everywhere(lab: dict[str, Any], run_in_client: RunIn, run_in_inet: RunIn) -> None:
    for run in (run_in_client, run_in_inet):
        code, _, body = curl(run, lab, "https://status503.lab.test/")
        assert (code, title(body)) == (503, "Lab site answering 503")


@pytest.mark.lab
def test_geo_cdn_answers_differ_and_both_have_valid_certs(
    lab: dict[str, Any], run_in_client: RunIn
) -> None:
    _, isp = kdig(run_in_client, m.ISP_RESOLVER, "geo-cdn.lab.test")
    _, public = kdig(run_in_client, m.PUBLIC_RESOLVER, "geo-cdn.lab.test")
    assert isp == ["198.19.1.19"] and public == ["198.19.1.18"]
    for address in (*isp, *public):
        code, _, body = curl(
            run_in_client,
            lab,
            "https://geo-cdn.lab.test/",
            "--resolve",
            f"geo-cdn.lab.test:443:{address}",
        )
        assert (code, title(body)) == (200, "Lab geo CDN")


# --- 2-5: DNS ---------------------------------------------------------------------------------


@pytest.mark.lab
def test_isp_nxdomain_for_an_existing_name(lab: dict[str, Any], run_in_client: RunIn) -> None:
    assert kdig(run_in_client, m.ISP_RESOLVER, "nxdomain.lab.test") == ("NXDOMAIN", [])
    assert kdig(run_in_client, m.PUBLIC_RESOLVER, "nxdomain.lab.test") == (
        "NOERROR",
        ["198.19.1.2"],
    )


@pytest.mark.lab
def test_isp_answers_the_blockpage_server(lab: dict[str, Any], run_in_client: RunIn) -> None:
    assert kdig(run_in_client, m.ISP_RESOLVER, "dns-blockpage.lab.test")[1] == [m.ISP_BLOCKPAGE]
    assert kdig(run_in_client, m.PUBLIC_RESOLVER, "dns-blockpage.lab.test")[1] == ["198.19.1.3"]
    code, _, body = curl(run_in_client, lab, "http://dns-blockpage.lab.test/")
    assert code == 200 and BLOCKPAGE_TEXT in body and "149-ФЗ" in body
    assert "eais.rkn.gov.ru" in body and "href" not in body


@pytest.mark.lab
@pytest.mark.parametrize(
    ("name", "bogon"),
    [("bogon-loopback.lab.test", "127.0.0.1"), ("bogon-private.lab.test", "10.10.34.35")],
)
def test_isp_answers_a_bogon(run_in_client: RunIn, name: str, bogon: str) -> None:
    # DNS only: nothing is ever sent to the bogon address
    assert kdig(run_in_client, m.ISP_RESOLVER, name) == ("NOERROR", [bogon])
    assert kdig(run_in_client, m.PUBLIC_RESOLVER, name)[1] == [ADDR[name]]


@pytest.mark.lab
@pytest.mark.parametrize("resolver", [m.ISP_RESOLVER, m.PUBLIC_RESOLVER])
def test_injected_answer_races_the_real_one(run_in_client: RunIn, resolver: str) -> None:
    replies = wire(
        run_in_client, "dns-replies", resolver, "dns-injected.lab.test", "--window", "1.5"
    )["replies"]
    assert [r["answers"] for r in replies] == [[m.ISP_BLOCKPAGE], ["198.19.1.6"]]
    assert all(r["id_ok"] and r["rcode"] == 0 for r in replies)
    # other names are not touched
    clean = wire(run_in_client, "dns-replies", resolver, "ok.lab.test", "--window", "1")
    assert [r["answers"] for r in clean["replies"]] == [["198.19.1.1"]]


@pytest.mark.lab
def test_injector_answers_for_an_address_running_no_resolver(run_in_client: RunIn) -> None:
    result = wire(
        run_in_client, "dns-replies", "198.19.1.1", "dns-injected.lab.test", "--window", "1.5"
    )
    replies = result["replies"]
    assert [r["answers"] for r in replies] == [[m.ISP_BLOCKPAGE]]
    assert result["errors"] == ["ECONNREFUSED"]  # the real host's ICMP port unreachable


# --- 6-8 and 16: TCP --------------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.parametrize(
    ("name", "client", "control"),
    [
        ("blackhole.lab.test", "timeout", "ok"),
        ("tcp-rst.lab.test", "ECONNREFUSED", "ok"),
        ("icmp-host.lab.test", "EHOSTUNREACH", "ok"),
        ("icmp-port.lab.test", "ECONNREFUSED", "ok"),
        ("down-refused.lab.test", "ECONNREFUSED", "ECONNREFUSED"),
        ("down-blackhole.lab.test", "timeout", "timeout"),
    ],
)
def test_tcp_connect(
    run_in_client: RunIn, run_in_inet: RunIn, name: str, client: str, control: str
) -> None:
    args = ("connect", ADDR[name], "443", "--timeout", "2")
    assert wire(run_in_client, *args)["connect"] == client
    assert wire(run_in_inet, *args)["connect"] == control


# --- 9-10: TLS SNI ----------------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.parametrize(
    ("name", "outcome"), [("sni-rst.lab.test", "ECONNRESET"), ("sni-drop.lab.test", "timeout")]
)
def test_sni_filtering(lab: dict[str, Any], run_in_client: RunIn, name: str, outcome: str) -> None:
    ca = lab["ca_file"]
    blocked = wire(run_in_client, "tls", ADDR[name], name, "--ca", ca, "--timeout", "2")
    assert blocked == {"connect": "ok", "handshake": outcome}
    innocuous = wire(run_in_client, "tls", ADDR[name], "example.org", "--ca", ca)
    assert innocuous["handshake"] == "ok"
    # the trigger is the name, not the address: the open site's server is hit too
    elsewhere = wire(run_in_client, "tls", ADDR["ok.lab.test"], name, "--ca", ca, "--timeout", "2")
    assert elsewhere["handshake"] == outcome


@pytest.mark.lab
def test_border_injector_resets_the_named_clienthello(
    lab: dict[str, Any], run_in_client: RunIn
) -> None:
    ca = lab["ca_file"]
    name = "border-reset.lab.test"
    blocked = wire(run_in_client, "tls", ADDR[name], name, "--ca", ca, "--timeout", "2")
    assert blocked == {"connect": "ok", "handshake": "ECONNRESET"}
    assert wire(run_in_client, "tls", ADDR[name], "example.org", "--ca", ca)["handshake"] == "ok"


# --- 11-14: HTTP ------------------------------------------------------------------------------


@pytest.mark.lab
def test_border_injector_answers_with_a_blockpage(run_in_client: RunIn, run_in_inet: RunIn) -> None:
    name = "border-blockpage.lab.test"
    injected = wire(run_in_client, "http", ADDR[name], name)
    assert injected["status"] == 200 and BLOCKPAGE_TEXT in injected["body"]
    assert "Server" not in injected["headers"]  # nginx would say so: this one is forged
    genuine = wire(run_in_inet, "http", ADDR[name], name)
    assert title(genuine["body"]) == "Lab site answered with an injected blockpage at the border"


@pytest.mark.lab
def test_host_header_filtering_resets(run_in_client: RunIn) -> None:
    address = ADDR["host-rst.lab.test"]
    blocked = wire(run_in_client, "http", address, "host-rst.lab.test")
    assert blocked == {"connect": "ok", "response": "ECONNRESET", "received": 0}
    innocuous = wire(run_in_client, "http", address, "example.org")
    assert innocuous["status"] == 200


@pytest.mark.lab
def test_transparent_proxy_blockpage(
    lab: dict[str, Any], run_in_client: RunIn, run_in_inet: RunIn
) -> None:
    code, _, body = curl(run_in_client, lab, "http://tproxy-blockpage.lab.test/")
    assert code == 200 and title(body) == BLOCKPAGE_TEXT
    code, _, body = curl(run_in_inet, lab, "http://tproxy-blockpage.lab.test/")
    assert (code, title(body)) == (200, "Lab site replaced by a transparent-proxy blockpage")


@pytest.mark.lab
def test_redirect_to_blockpage(
    lab: dict[str, Any], run_in_client: RunIn, run_in_inet: RunIn
) -> None:
    code, head, _ = curl(run_in_client, lab, "http://redirect-blockpage.lab.test/")
    location = re.search(r"^Location: (\S+)", head, re.M | re.I)
    assert code == 302 and location is not None
    assert location.group(1).startswith("http://warning.rt.lab.test/")
    code, _, body = curl(run_in_client, lab, location.group(1))
    assert code == 200 and title(body) == BLOCKPAGE_TEXT
    code, _, body = curl(run_in_inet, lab, "http://redirect-blockpage.lab.test/")
    assert (code, title(body)) == (200, "Lab site redirected to a blockpage")


@pytest.mark.lab
def test_throttling(lab: dict[str, Any], run_in_client: RunIn, run_in_inet: RunIn) -> None:
    code, _, body = curl(run_in_client, lab, "https://throttled.lab.test/")
    assert (code, title(body)) == (200, "Lab site throttled to 64 kbit/s")
    slow = wire(
        run_in_client,
        "rate",
        "http://throttled.lab.test/big.bin",
        "--seconds",
        "5",
        "--ca",
        lab["ca_file"],
    )
    assert slow["status"] == 200 and slow["received"] > 0
    assert slow["rate"] < 1.5 * m.THROTTLE_BYTES_PER_S, slow
    fast = wire(
        run_in_inet,
        "rate",
        "https://throttled.lab.test/big.bin",
        "--seconds",
        "5",
        "--ca",
        lab["ca_file"],
    )
    assert fast["received"] == m.LARGE_OBJECT_SIZE


# --- control vantage --------------------------------------------------------------------------


@pytest.mark.lab
def test_control_vantage_resolves_with_the_public_resolver(
    lab: dict[str, Any], run_in_client: RunIn
) -> None:
    from tests.lab import lab as labmod

    labmod.control_start()
    request = (
        '{"http_request": "http://nxdomain.lab.test/", "http_request_headers": {},'
        ' "tcp_connect": ["198.19.1.2:80"]}'
    )
    res = run_in_client(
        "curl",
        "-sS",
        "-m",
        "10",
        "--cacert",
        lab["ca_file"],
        "-H",
        "content-type: application/json",
        "-d",
        request,
        lab["control_url"],
    )
    answer = json.loads(res.stdout)
    assert answer["dns"]["addrs"] == ["198.19.1.2"]  # uncensored view, unlike the ISP's NXDOMAIN
    assert answer["tcp_connect"]["198.19.1.2:80"]["status"] is True


# --- pure checks (no root) --------------------------------------------------------------------


def test_scenarios_file_is_consistent() -> None:
    names = {s.name for s in SITES}
    assert len(names) == len(SITES)
    names |= {h.name for h in m.load_app_hosts()}  # the seed case's website is an app host
    assert len({s.address for s in SITES}) == len(SITES), "one address per site"
    ids = [sc.id for sc in SCENARIOS]
    assert len(set(ids)) == len(ids)
    runs = {r.name for r in m.load_runs()}
    for sc in SCENARIOS:
        host = sc.url.split("/")[2]
        assert host in names or any(host.endswith(f".{n}") for n in names), sc.id
        assert sc.x_outcome in OUTCOMES, sc.id
        assert set(sc.failures) <= {"dns", "tcp_connect", "tls_handshake", "http_request"}
        assert sc.blocking in (False, None, "dns", "tcp_ip", "http-failure", "http-diff")
        accessible = sc.x_outcome in ("ok", "http/slow-link")
        assert (sc.accessible is True) == accessible, sc.id
        assert not sc.run or sc.run in runs, sc.id
    for site in SITES:
        for address in configs.site_addresses(site):
            assert address.startswith(("198.18.", "198.19.")), site.name


def test_censor_rules_render_every_technique() -> None:
    rules = configs.iptables_isp(SITES, delay_ms=0)
    assert '--string "sni-rst.lab.test" -j REJECT --reject-with tcp-reset' in rules
    assert '--string "sni-drop.lab.test" -j DROP' in rules
    assert '--string "Host: host-rst.lab.test" -j REJECT --reject-with tcp-reset' in rules
    assert "-d 198.19.1.7 -j DROP" in rules
    assert f"-d {m.CONTROL_ADDR} -p tcp --dport {m.COLLECTOR_BLOCKED_PORT} -j DROP" in rules
    assert "--queue-num 2" not in rules
    assert "--queue-num 2" in configs.iptables_isp(SITES, delay_ms=10)
    assert configs.iptables_inet(SITES).count("-j DROP") == 1
    assert (
        f"-A INPUT -i {m.INET_IF} -d 198.19.1.203 -p tcp --dport 443 -m string --algo bm "
        '--string "geoblock.lab.test" -j REJECT --reject-with tcp-reset'
    ) in configs.iptables_inet(SITES)


def _query_packet(name: str, src: str, dst: str) -> bytes:
    payload = dns.message.make_query(name, dns.rdatatype.A).to_wire()
    udp = struct.pack("!HHHH", 40000, 53, 8 + len(payload), 0) + payload
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            1,
            0,
            64,
            17,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + udp
    )


def test_border_rules_queue_only_the_border_techniques() -> None:
    rules = configs.iptables_border(SITES)
    assert "-A PREROUTING -j CT --notrack" in rules
    assert rules.count("--queue-num 3") == 2
    assert '--string "border-reset.lab.test"' in rules
    assert '--icase --string "Host: border-blockpage.lab.test"' in rules
    assert configs.tcpinject_args(SITES) == [
        "--rst=border-reset.lab.test",
        "--blockpage=border-blockpage.lab.test",
    ]
    # the ISP's string matches must not catch a border site's name
    isp = configs.iptables_isp(SITES, delay_ms=0)
    for site in SITES:
        if site.censor in m.BORDER_CENSORS:
            for needle in re.findall(r'--string "([^"]+)"', isp):
                assert needle not in site.name and needle not in f"Host: {site.name}"


def _tcp_packet(payload: bytes, *, dport: int, seq: int = 1000, ack: int = 5000) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, seq, ack, 5 << 4, 0x18, 502, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        1,
        0,
        3,
        6,
        0,
        socket.inet_aton("198.18.0.2"),
        socket.inet_aton("198.19.1.201"),
    )
    return ip + tcp + payload


def _tcp_checksum_ok(packet: bytes) -> bool:
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 6, len(packet) - 20)
    return tcpinject._checksum(pseudo + packet[20:]) == 0


def test_tcp_injector_forges_a_rst_in_sequence() -> None:
    hello = b"\x16\x03\x01 ... border-reset.lab.test ..."
    forged = tcpinject.forge(
        _tcp_packet(hello, dport=443),
        rst=frozenset({"border-reset.lab.test"}),
        blockpage=frozenset(),
        page=b"",
        ident=77,
    )
    assert forged is not None
    assert socket.inet_ntoa(forged[12:16]) == "198.19.1.201"  # from the server's address
    assert socket.inet_ntoa(forged[16:20]) == "198.18.0.2"
    assert forged[8] == 64 and struct.unpack("!H", forged[4:6])[0] == 77
    sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", forged[20:34])
    assert (sport, dport, seq, ack) == (443, 40000, 5000, 1000 + len(hello))
    assert flags == tcpinject.RST | tcpinject.ACK
    assert tcpinject._checksum(forged[:20]) == 0 and _tcp_checksum_ok(forged)


def test_tcp_injector_forges_a_blockpage_for_the_named_host_only() -> None:
    page = "<title>Доступ к ресурсу ограничен</title>".encode()
    request = b"GET / HTTP/1.1\r\nHOST: Border-Blockpage.lab.test\r\nAccept: */*\r\n\r\n"
    kwargs = {"rst": frozenset(), "blockpage": frozenset({"border-blockpage.lab.test"})}
    forged = tcpinject.forge(_tcp_packet(request, dport=80), page=page, ident=1, **kwargs)
    assert forged is not None and _tcp_checksum_ok(forged)
    flags = forged[33]
    assert flags == tcpinject.PSH | tcpinject.ACK | tcpinject.FIN
    body = forged[40:]
    assert body.startswith(b"HTTP/1.1 200 OK\r\n") and body.endswith(page)
    other = b"GET / HTTP/1.1\r\nHost: border-blockpage.lab.test.example\r\n\r\n"
    assert tcpinject.forge(_tcp_packet(other, dport=80), page=page, ident=1, **kwargs) is None
    assert tcpinject.forge(_tcp_packet(b"", dport=80), page=page, ident=1, **kwargs) is None
    assert tcpinject.parse(b"\x45" + b"\0" * 30) is None


def test_injector_forges_a_reply_from_the_queried_resolver() -> None:
    query = _query_packet("DNS-Injected.lab.test", "198.18.0.2", "198.19.8.8")
    forged = forge(query, {"dns-injected.lab.test": "198.18.2.10"})
    assert forged is not None
    assert socket.inet_ntoa(forged[12:16]) == "198.19.8.8"
    assert socket.inet_ntoa(forged[16:20]) == "198.18.0.2"
    assert struct.unpack("!HH", forged[20:24]) == (53, 40000)
    reply = dns.message.from_wire(forged[28:])
    assert [r.to_text() for rr in reply.answer for r in rr] == ["198.18.2.10"]
    assert (
        forge(
            _query_packet("ok.lab.test", "198.18.0.2", "198.19.8.8"),
            {"dns-injected.lab.test": "198.18.2.10"},
        )
        is None
    )
    assert forge(b"\x45" + b"\0" * 10, {}) is None
