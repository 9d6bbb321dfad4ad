"""The app API hosts of the lab (issue 6): their servers, certificates and listeners.

The hosts are data (``[[app_host]]`` in scenarios.toml, :class:`tests.lab.model.AppHost`). This
module renders what serves them, as pure functions returning text plus one ``prepare`` that
writes files:

- ``apps-nginx`` in cp-inet: one server per (host, listener) on the host's own address, exact
  routes with their status / content type / body, every other path the host's default status.
  TLS leaves come from the lab CA, or for ``ca = "signal"`` from a separate "Signal lab CA"
  whose PEM is written to tests/lab/apps/signal-lab-ca.pem (the Signal lab app file's ca_file).
- ``mitm-nginx`` in cp-isp (198.18.2.44:443): the interception server the censor DNATs
  ``tls-mitm`` hosts to, presenting leaves from a "censor CA" that nobody trusts.

The censor rules and DNS records reuse the [[site]] machinery through ``AppHost.site()``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.lab import configs, pki
from tests.lab import model as m
from tests.lab.model import AppHost, Site

SIGNAL_CA_NAME = "censorprobe Signal lab CA"
CENSOR_CA_NAME = "censorprobe censor CA (untrusted)"


def app_sites(hosts: list[AppHost]) -> list[Site]:
    """The hosts as sites (role "app") for the DNS zones and the censor rules."""
    return [h.site() for h in hosts]


def served(hosts: list[AppHost]) -> list[AppHost]:
    """Hosts that own an address in cp-inet (all but the DNS-only names)."""
    return [h for h in hosts if not h.dns_only]


def mitm_hosts(hosts: list[AppHost]) -> list[AppHost]:
    return [h for h in hosts if h.censor == "tls-mitm"]


def _quote(text: str) -> str:
    if "$" in text:
        raise ValueError(f"nginx would expand variables in {text!r}")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _locations(host: AppHost) -> list[str]:
    out = []
    for route in host.routes:
        if route.location is not None:
            answer = f"return {route.status} {route.location};"
        elif route.body:
            answer = f"default_type {route.type}; return {route.status} {_quote(route.body)};"
        else:
            answer = f"return {route.status};"
        out.append(f"    location = {route.path} {{ {answer} }}\n")
    out.append(f"    location / {{ return {host.status}; }}\n")
    return out


def cert_paths(state: Path, host: AppHost) -> tuple[Path, Path]:
    directory = state / "pki" / "apps"
    return directory / f"{host.name}.pem", directory / f"{host.name}.key"


def nginx_apps(hosts: list[AppHost], state: Path) -> str:
    """The app hosts' nginx (cp-inet)."""
    out = [configs.nginx_head(state, "apps")]
    for host in served(hosts):
        for scheme, port in host.ports:
            tls = " ssl" if scheme == "https" else ""
            out.append(f"  server {{\n    listen {host.address}:{port}{tls};\n")
            out.append(f"    server_name {host.name};\n")
            if tls:
                cert, key = cert_paths(state, host)
                out.append(f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n")
            out += _locations(host)
            out.append("  }\n")
    out.append("}\n")
    return "".join(out)


def nginx_mitm(hosts: list[AppHost], state: Path) -> str:
    """The ISP's TLS interception server (cp-isp): a censor-CA leaf per intercepted name."""
    out = [configs.nginx_head(state, "mitm")]
    for i, host in enumerate(mitm_hosts(hosts)):
        default = " default_server" if i == 0 else ""
        directory = state / "pki" / "mitm"
        out.append(
            f"  server {{\n    listen {m.ISP_MITM}:443 ssl{default};\n"
            f"    server_name {host.name};\n"
            f"    ssl_certificate {directory / host.name}.pem;\n"
            f"    ssl_certificate_key {directory / host.name}.key;\n"
            "    location / { return 403; }\n  }\n"
        )
    out.append("}\n")
    return "".join(out)


def prepare(
    state: Path,
    hosts: list[AppHost],
    *,
    lab_ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    """Certificates (lab CA, Signal lab CA, censor CA) and the two nginx configs."""
    apps_pki = state / "pki" / "apps"
    signal_cert, signal_key, signal_pem = pki.make_ca(
        apps_pki, common_name=SIGNAL_CA_NAME, stem="signal-ca"
    )
    shutil.copyfile(signal_pem, m.SIGNAL_CA_FILE)
    for host in served(hosts):
        if not any(scheme == "https" for scheme, _ in host.ports):
            continue
        ca_cert, ca_key = (signal_cert, signal_key) if host.ca == "signal" else lab_ca
        pki.issue(ca_cert, ca_key, apps_pki, host.name, addresses=(host.address,))
    intercepted = mitm_hosts(hosts)
    if intercepted:
        mitm_pki = state / "pki" / "mitm"
        censor_cert, censor_key, _ = pki.make_ca(
            mitm_pki, common_name=CENSOR_CA_NAME, stem="censor-ca"
        )
        for host in intercepted:
            pki.issue(censor_cert, censor_key, mitm_pki, host.name, addresses=(host.address,))
    conf = state / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "apps-nginx.conf").write_text(nginx_apps(hosts, state), encoding="utf-8")
    (conf / "mitm-nginx.conf").write_text(nginx_mitm(hosts, state), encoding="utf-8")


def listeners(hosts: list[AppHost]) -> dict[str, set[str]]:
    """``proto:addr:port`` every app server must be listening on, per namespace."""
    inet = {f"tcp:{h.address}:{port}" for h in served(hosts) for _, port in h.ports}
    isp = {f"tcp:{m.ISP_MITM}:443"} if mitm_hosts(hosts) else set()
    return {m.NS_INET: inet, m.NS_ISP: isp}


def remove_generated() -> list[str]:
    """Delete what lab-up wrote outside the state directory (the Signal lab CA's PEM)."""
    if m.SIGNAL_CA_FILE.exists():
        m.SIGNAL_CA_FILE.unlink()
        return [f"removed {m.SIGNAL_CA_FILE}"]
    return []
