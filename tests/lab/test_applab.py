"""Wire-level checks of the app hosts of the lab (issue 6) and of their declaration as data.

Marked ``lab``: the app servers and the censor's rules seen from cp-client (the volunteer) and
cp-inet (the control vantage). The pure checks at the end (the [[app_host]] and [[app_scenario]]
tables against the lab app files, config rendering) run everywhere.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.lab import applab, configs
from tests.lab import model as m
from tests.lab.fixtures import RunIn, wire
from tests.lab.test_lab import BLOCKPAGE_TEXT, curl, kdig, title

HOSTS = m.load_app_hosts()
ADDR = {h.name: h.address for h in HOSTS}
APP_SCENARIOS = m.load_app_scenarios()
APP_FILES = sorted(p for p in m.APPS_DIR.glob("*.toml"))


def _app_file(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


@pytest.mark.lab
@pytest.mark.parametrize(
    ("name", "isp", "public"),
    [
        ("e2.whatsapp.app.lab.test", ("NXDOMAIN", []), ("NOERROR", ["198.19.2.22"])),
        ("edge-mqtt.facebook.app.lab.test", ("NOERROR", [m.ISP_BLOCKPAGE]), None),
        ("www.linkedin.app.lab.test", ("NOERROR", ["198.19.2.10"]), None),
        ("uptime.signal.app.lab.test", ("NOERROR", ["198.19.2.45"]), None),
    ],
)
def test_app_dns(run_in_client: RunIn, name: str, isp: tuple[str, list[str]], public: Any) -> None:
    assert kdig(run_in_client, m.ISP_RESOLVER, name) == isp
    assert kdig(run_in_client, m.PUBLIC_RESOLVER, name) == (public or ("NOERROR", [ADDR[name]]))


@pytest.mark.lab
@pytest.mark.parametrize(
    ("address", "port", "client"),
    [
        ("198.19.2.31", 80, "timeout"),  # Telegram DC1: IP blocking (drop)
        ("198.19.2.34", 443, "timeout"),
        ("198.19.2.35", 443, "ECONNREFUSED"),  # DC5: RST on the SYN
        ("198.19.2.36", 443, "ok"),  # DC6 untouched
        ("198.19.2.56", 443, "ECONNREFUSED"),  # Facebook star
        ("198.19.2.21", 5222, "ok"),  # a WhatsApp chat endpoint
    ],
)
def test_app_tcp(
    run_in_client: RunIn, run_in_inet: RunIn, address: str, port: int, client: str
) -> None:
    args = ("connect", address, str(port), "--timeout", "2")
    assert wire(run_in_client, *args)["connect"] == client
    assert wire(run_in_inet, *args)["connect"] == "ok"


@pytest.mark.lab
def test_telegram_dc_speaks_plain_http_on_443(lab: dict[str, Any], run_in_inet: RunIn) -> None:
    code, head, _ = curl(run_in_inet, lab, "http://198.19.2.36:443/", "-X", "POST")
    assert code == 404 and "Server: nginx" in head


@pytest.mark.lab
@pytest.mark.parametrize("name", ["web.whatsapp.app.lab.test", "cdsi.signal.app.lab.test"])
def test_app_sni_filtering(lab: dict[str, Any], run_in_client: RunIn, name: str) -> None:
    blocked = wire(run_in_client, "tls", ADDR[name], name, "--ca", lab["ca_file"])
    assert blocked == {"connect": "ok", "handshake": "ECONNRESET"}
    innocuous = wire(run_in_client, "tls", ADDR[name], "example.org", "--ca", lab["ca_file"])
    assert innocuous["handshake"] == "ok"


@pytest.mark.lab
def test_signal_storage_is_intercepted_with_a_censor_certificate(
    lab: dict[str, Any], run_in_client: RunIn, run_in_inet: RunIn
) -> None:
    url = "https://storage.signal.app.lab.test/"
    signal_ca = ("--cacert", str(m.SIGNAL_CA_FILE))
    assert curl(run_in_inet, lab, url, *signal_ca)[0] == 401
    res = run_in_client("curl", "-sS", "-m", "5", *signal_ca, "-o", "/dev/null", url)
    assert res.returncode == 60, res.stderr  # peer certificate cannot be authenticated
    shown = run_in_client(
        "sh",
        "-c",
        f"openssl s_client -connect {ADDR['storage.signal.app.lab.test']}:443 "
        "-servername storage.signal.app.lab.test </dev/null 2>/dev/null",
    ).stdout
    assert applab.CENSOR_CA_NAME in shown
    # the real server's certificate is from the Signal lab CA, which the lab CA does not cover
    assert curl(run_in_inet, lab, "https://chat.signal.app.lab.test/")[0] == 0
    assert curl(run_in_client, lab, "https://chat.signal.app.lab.test/", *signal_ca)[0] == 401


@pytest.mark.lab
def test_linkedin_website_blockpage_on_port_80_only(
    lab: dict[str, Any], run_in_client: RunIn, run_in_inet: RunIn
) -> None:
    code, _, body = curl(run_in_client, lab, "http://www.linkedin.app.lab.test/")
    assert code == 200 and title(body) == BLOCKPAGE_TEXT
    code, _, body = curl(run_in_inet, lab, "http://www.linkedin.app.lab.test/")
    assert (code, title(body)) == (200, "LinkedIn (lab)")
    for run in (run_in_client, run_in_inet):
        code, head, body = curl(run, lab, "https://www.linkedin.app.lab.test/robots.txt")
        assert code == 200 and body.startswith("User-agent: *")
        assert "Content-Type: text/plain" in head
        code, _, body = curl(run, lab, "https://api.linkedin.app.lab.test/v2/me")
        assert code == 401 and "EMPTY_ACCESS_TOKEN" in body


# --- pure checks (no root) --------------------------------------------------------------------


def test_app_hosts_are_consistent() -> None:
    names = [h.name for h in HOSTS]
    addresses = [h.address for h in HOSTS]
    assert len(set(names)) == len(names)
    assert len(set(addresses)) == len(addresses), "one address per app host"
    site_addresses = {s.address for s in m.load()[0]}
    for h in HOSTS:
        assert ipaddress.ip_address(h.address) in ipaddress.ip_network(m.APP_RANGE), h.name
        assert h.name.endswith("." + m.APP_ZONE), h.name
        assert h.address not in site_addresses
        assert h.ca in ("lab", "signal")
        assert all(scheme in ("http", "https") for scheme, _ in h.ports), h.name
        assert h.censor in (None, "tproxy-blockpage", "ip-drop", "syn-rst", "sni-rst", "tls-mitm")


@pytest.mark.parametrize("path", APP_FILES, ids=[p.stem for p in APP_FILES])
def test_every_host_of_a_lab_app_file_is_served_by_the_lab(path: Path) -> None:
    data = _app_file(path)
    mine = {h.name: h for h in HOSTS if h.app == data["name"]}
    by_address = {h.address: h for h in mine.values()}
    for host in data["hosts"]:
        served = mine.get(host["host"]) or by_address.get(host["host"])
        assert served is not None, f"{path.name}: {host['host']} is not an [[app_host]]"
        if host.get("stage") == "dns":
            continue
        wanted = host.get("ports", [443])
        scheme = host.get("scheme", "https")
        listening = {p for s, p in served.ports if s == scheme}
        if not served.inet_drop and served.listen:
            assert set(wanted) <= listening, (path.name, host["id"])


@pytest.mark.parametrize("path", APP_FILES, ids=[p.stem for p in APP_FILES])
def test_every_lab_app_file_has_a_scenario_naming_each_host(path: Path) -> None:
    (scenario,) = [s for s in APP_SCENARIOS if s.path == path]
    assert set(scenario.hosts) == {h["id"] for h in _app_file(path)["hosts"]}


def test_app_configs_render() -> None:
    state = Path("/state")
    nginx = applab.nginx_apps(HOSTS, state)
    assert "listen 198.19.2.31:443;" in nginx  # Telegram: plain HTTP on 443
    assert "listen 198.19.2.21:5222 ssl;" in nginx
    assert "return 301 https://www.linkedin.app.lab.test/;" in nginx
    assert "198.19.2.45" not in nginx  # DNS only
    mitm = applab.nginx_mitm(HOSTS, state)
    assert f"listen {m.ISP_MITM}:443 ssl default_server;" in mitm
    assert "server_name storage.signal.app.lab.test;" in mitm
    rules = configs.iptables_isp(applab.app_sites(HOSTS), delay_ms=0)
    assert f"-d 198.19.2.42 -p tcp --dport 443 -j DNAT --to-destination {m.ISP_MITM}:443" in rules
    assert "-d 198.19.2.10 -p tcp --dport 80 -j DNAT" in rules
    assert "-d 198.19.2.10 -p tcp --dport 443" not in rules
    collector = f"-d {m.CONTROL_ADDR} -p tcp --dport {m.COLLECTOR_BLOCKED_PORT} -j DROP"
    assert rules.count("-j DROP") == 4 + rules.count(collector) == 5  # + the blocked collector
    argv = configs.dnsmasq_isp_argv(applab.app_sites(HOSTS), state)
    assert "--address=/e2.whatsapp.app.lab.test/" in argv
    assert f"--address=/edge-mqtt.facebook.app.lab.test/{m.ISP_BLOCKPAGE}" in argv
    assert applab.listeners(HOSTS)[m.NS_ISP] == {f"tcp:{m.ISP_MITM}:443"}
    with pytest.raises(ValueError):
        applab._quote("$host")
