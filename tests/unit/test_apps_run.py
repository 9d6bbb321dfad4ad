"""App tests end to end on loopback: real DNS, TCP, TLS and HTTP servers on 127.0.0.x.

Each test writes a "lab variant" app file whose names resolve through a loopback DNS server to
127.0.0.x and whose ports are the servers' ephemeral ports, runs :func:`measure_app`, applies
:func:`analyze_app` as ``Session.finish`` does, and checks per-host and per-app verdicts and
that OONI's own parser (oonidata) loads the measurement strictly.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import trio
import trustme

from probe.apps.runner import measure_app
from probe.apps.spec import load_app_file
from probe.apps.verdict import analyze_app
from probe.config import Config, Timeouts
from probe.context import RunContext
from probe.registry import app_test
from tests.conformance.check import check_with_oonidata
from tests.hostile.context import run_context
from tests.unit import servers as srv

NGINX_404 = srv.response(b"<html>404</html>", status="404 Not Found", headers=["Server: nginx"])
OK_200 = srv.response(b"User-agent: *\n", headers=["Content-Type: text/plain"])
UNAUTH_401 = srv.response(b'{"status":401}', status="401 Unauthorized")


def zone_handler(zone: Mapping[str, str | None]) -> Callable[[dns.message.Message], Any]:
    """A resolver for ``zone``: name -> IPv4 (None = NXDOMAIN)."""

    def handle(query: dns.message.Message) -> Any:
        name = query.question[0].name.to_text().rstrip(".")
        if name not in zone or zone[name] is None:
            return srv.rcode_reply(query, dns.rcode.NXDOMAIN)
        return srv.answer(query, str(zone[name]))

    return handle


def make_ctx(
    *, resolver: str, ca_file: Path, control_url: str | None = None, timeout: float = 1.5
) -> RunContext:
    config = Config(
        timeouts=Timeouts(dns=timeout, connect=timeout, tls=timeout, http=timeout, target=30),
        resolver=resolver,
        ca_file=ca_file,
        control_url=control_url,
        public_ranges=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    return run_context(
        config,
        udp_resolver=resolver,
        ca_file=ca_file,
        report_id="20240101T000000Z_telegram_ZZ_0_n0_AAAAAAAAAAAAAAAA",
    )


async def run(path: Path, ctx: RunContext) -> dict[str, Any]:
    app = load_app_file(path)
    msmt = await measure_app(app, ctx=ctx, test=app_test(app.ooni_test))
    msmt["test_keys"].update(analyze_app(msmt))
    assert check_with_oonidata([json.dumps(msmt)]) == []
    return msmt


def rows(msmt: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(r["id"], r["port"]): r for r in msmt["test_keys"]["x_hosts"]}


@asynccontextmanager
async def th_server(answer: dict[str, Any]) -> AsyncIterator[str]:
    """A control vantage that answers every request with ``answer`` (scripted TH)."""
    body = json.dumps(answer).encode()
    script = [srv.response(body, headers=["Content-Type: application/json"])]
    async with srv.http_server(script, host="127.0.0.1") as server:
        yield f"http://{server.address}/"


# --- Telegram: data centres by fixed address, plain HTTP on both ports ----------------------


async def test_telegram_lab_variant(tmp_path: Path) -> None:
    certs = srv.Certs(tmp_path)
    async with AsyncExitStack() as stack:
        dc1a = await stack.enter_async_context(srv.http_server([NGINX_404], host="127.0.0.11"))
        dc1b = await stack.enter_async_context(srv.http_server([NGINX_404], host="127.0.0.11"))
        dc3 = await stack.enter_async_context(srv.tcp_server(srv.silent, host="127.0.0.13"))
        web = await stack.enter_async_context(
            srv.http_server(
                [OK_200], host="127.0.0.20",
                ssl_context=certs.server_context("web.telegram.lab.test"),
            )
        )  # fmt: skip
        resolver = await stack.enter_async_context(
            srv.dns_server(zone_handler({"web.telegram.lab.test": "127.0.0.20"}))
        )
        closed = srv.closed_port("127.0.0.12")
        path = tmp_path / "telegram.toml"
        path.write_text(
            f"""
name = "telegram"
title = "Telegram (loopback)"
ooni_test = "telegram"
[[hosts]]
id = "dc1"
host = "127.0.0.11"
component = "dc"
ports = [{dc1a.port}, {dc1b.port}]
scheme = "http"
method = "POST"
[[hosts]]
id = "dc2"
host = "127.0.0.12"
component = "dc"
ports = [{closed}]
scheme = "http"
[[hosts]]
id = "dc3"
host = "127.0.0.13"
component = "dc"
ports = [{dc3.port}]
scheme = "http"
[[hosts]]
id = "web"
host = "web.telegram.lab.test"
component = "web"
ports = [{web.port}]
"""
        )
        msmt = await run(path, make_ctx(resolver=resolver.address, ca_file=certs.ca_file))
    tk = msmt["test_keys"]
    assert msmt["test_name"] == "telegram" and msmt["test_version"] == "0.3.1"
    assert msmt["input"] is None
    assert tk["telegram_tcp_blocking"] is False
    assert tk["telegram_http_blocking"] is False
    assert tk["telegram_web_status"] == "ok" and tk["telegram_web_failure"] is None
    r = rows(msmt)
    assert r[("dc1", dc1a.port)]["outcome"] == "ok"
    assert r[("dc1", dc1a.port)]["http_status"] == 404
    assert r[("dc2", closed)]["outcome"] == "tcp/refused"
    assert r[("dc3", dc3.port)]["tcp"] == "ok"
    assert r[("dc3", dc3.port)]["outcome"] == "http/timeout-after-request"
    assert r[("web", web.port)]["outcome"] == "ok"
    # no control: failures cannot be told from outages
    assert r[("dc2", closed)]["blocking"] is None
    assert tk["x_app_verdict"] == "undetermined"
    assert tk["x_anomaly"] is False


async def test_telegram_all_dcs_blocked_by_ip(tmp_path: Path) -> None:
    certs = srv.Certs(tmp_path)
    closed = [srv.closed_port(f"127.0.0.{i}") for i in (31, 32)]
    async with srv.dns_server(zone_handler({})) as resolver:
        path = tmp_path / "t.toml"
        path.write_text(
            'name = "telegram"\ntitle = "T"\nooni_test = "telegram"\n'
            + "".join(
                f'[[hosts]]\nid = "dc{i}"\nhost = "127.0.0.{31 + i}"\ncomponent = "dc"\n'
                f'ports = [{port}]\nscheme = "http"\n'
                for i, port in enumerate(closed)
            )
            + '[[hosts]]\nid = "web"\nhost = "web.telegram.lab.test"\ncomponent = "web"\n'
        )
        msmt = await run(path, make_ctx(resolver=resolver.address, ca_file=certs.ca_file))
    tk = msmt["test_keys"]
    assert tk["telegram_tcp_blocking"] is True
    assert tk["telegram_http_blocking"] is True
    assert tk["telegram_web_status"] == "blocked"
    assert tk["telegram_web_failure"] == "dns_nxdomain_error"
    assert rows(msmt)[("web", 443)]["outcome"] == "dns/nxdomain"
    assert tk["x_anomaly"] is True


# --- Signal: the app's own CA ---------------------------------------------------------------


async def test_signal_own_ca_and_reset(tmp_path: Path) -> None:
    certs = srv.Certs(tmp_path)  # the "system" (lab) CA
    signal_ca = trustme.CA()
    signal_pem = tmp_path / "signal-lab-ca.pem"
    signal_ca.cert_pem.write_to_path(str(signal_pem))

    def signal_ctx(name: str) -> Any:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        signal_ca.issue_cert(name).configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    zone = {
        "chat.signal.lab.test": "127.0.0.41",
        "storage.signal.lab.test": "127.0.0.42",
        "cdsi.signal.lab.test": "127.0.0.43",
        "uptime.signal.lab.test": None,
    }
    async with AsyncExitStack() as stack:
        chat = await stack.enter_async_context(
            srv.http_server(
                [UNAUTH_401], host="127.0.0.41", ssl_context=signal_ctx("chat.signal.lab.test")
            )
        )
        # the same kind of server, checked with the system roots only: must fail validation
        storage = await stack.enter_async_context(
            srv.http_server(
                [UNAUTH_401], host="127.0.0.42",
                ssl_context=signal_ctx("storage.signal.lab.test"),
            )
        )  # fmt: skip
        cdsi = await stack.enter_async_context(
            srv.tcp_server(srv.rst_after_client_hello, host="127.0.0.43")
        )
        resolver = await stack.enter_async_context(srv.dns_server(zone_handler(zone)))
        path = tmp_path / "signal.toml"
        path.write_text(
            f"""
name = "signal"
title = "Signal (loopback)"
ooni_test = "signal"
ca_file = "{signal_pem.name}"
[[hosts]]
id = "chat"
host = "chat.signal.lab.test"
component = "backend"
trust = "app"
ports = [{chat.port}]
[[hosts]]
id = "storage"
host = "storage.signal.lab.test"
component = "backend"
ports = [{storage.port}]
[[hosts]]
id = "cdsi"
host = "cdsi.signal.lab.test"
component = "backend"
trust = "app"
ports = [{cdsi.port}]
[[hosts]]
id = "uptime"
host = "uptime.signal.lab.test"
component = "uptime"
stage = "dns"
in_verdict = false
"""
        )
        msmt = await run(path, make_ctx(resolver=resolver.address, ca_file=certs.ca_file))
    tk = msmt["test_keys"]
    r = rows(msmt)
    assert r[("chat", chat.port)]["outcome"] == "ok"
    assert r[("chat", chat.port)]["http_status"] == 401
    assert r[("storage", storage.port)]["outcome"] == "tls/unknown-authority"
    assert r[("cdsi", cdsi.port)]["outcome"] == "tls/reset-after-clienthello"
    assert r[("uptime", None)]["outcome"] == "dns/nxdomain"
    assert tk["signal_backend_status"] == "blocked"
    # the last failure seen, in host order (as probe-cli keeps overwriting it)
    assert tk["signal_backend_failure"] == "connection_reset"
    handshakes = {h["server_name"]: h for h in tk["tls_handshakes"]}
    assert handshakes["chat.signal.lab.test"]["failure"] is None
    assert handshakes["storage.signal.lab.test"]["failure"] == "ssl_unknown_authority"


# --- WhatsApp: DNS blocking of one endpoint, the control says blocked or down ------------


def _whatsapp_file(path: Path, ports: tuple[int, int], web_port: int) -> None:
    hosts = "".join(
        f'[[hosts]]\nid = "e{i}"\nhost = "e{i}.whatsapp.lab.test"\ncomponent = "endpoints"\n'
        f'stage = "tcp"\nports = [{ports[0]}, {ports[1]}]\n'
        for i in (1, 2)
    )
    path.write_text(
        'name = "whatsapp"\ntitle = "W"\nooni_test = "whatsapp"\n' + hosts
        + f'[[hosts]]\nid = "registration"\nhost = "v.whatsapp.lab.test"\n'
        f'component = "registration"\npath = "/v2/register"\nports = [{web_port}]\n'
        f'[[hosts]]\nid = "web"\nhost = "web.whatsapp.lab.test"\ncomponent = "web"\n'
        f"ports = [{web_port}]\n"
    )  # fmt: skip


async def test_whatsapp_dns_blocking_with_control(tmp_path: Path) -> None:
    certs = srv.Certs(tmp_path)
    async with AsyncExitStack() as stack:
        ep443 = await stack.enter_async_context(srv.tcp_server(srv.silent, host="127.0.0.51"))
        ep5222 = await stack.enter_async_context(srv.tcp_server(srv.silent, host="127.0.0.51"))
        web = await stack.enter_async_context(
            srv.http_server(
                [srv.response(b"bad ua", status="400 Bad Request")], host="127.0.0.52",
                ssl_context=certs.server_context("web.whatsapp.lab.test", "v.whatsapp.lab.test"),
            )
        )  # fmt: skip
        zone: dict[str, str | None] = {
            "e1.whatsapp.lab.test": "127.0.0.51",
            "e2.whatsapp.lab.test": None,  # the censor's resolver hides e2
            "v.whatsapp.lab.test": "127.0.0.52",
            "web.whatsapp.lab.test": "127.0.0.52",
        }
        resolver = await stack.enter_async_context(srv.dns_server(zone_handler(zone)))
        control_answer = {
            "dns": {"failure": None, "addrs": ["127.0.0.51"]},
            "tcp_connect": {
                f"127.0.0.51:{ep443.port}": {"status": True, "failure": None},
                f"127.0.0.51:{ep5222.port}": {"status": True, "failure": None},
            },
            "tls_handshake": {},
            "http_request": {"failure": "connection_reset_error", "status_code": -1},
        }
        th = await stack.enter_async_context(th_server(control_answer))
        path = tmp_path / "whatsapp.toml"
        _whatsapp_file(path, (ep443.port, ep5222.port), web.port)
        ctx = make_ctx(resolver=resolver.address, ca_file=certs.ca_file, control_url=th)
        msmt = await run(path, ctx)
    tk = msmt["test_keys"]
    assert msmt["test_name"] == "whatsapp" and msmt["test_version"] == "0.11.0"
    assert tk["whatsapp_endpoints_status"] == "ok"
    assert tk["whatsapp_endpoints_blocked"] == ["e2.whatsapp.lab.test"]
    assert tk["whatsapp_endpoints_dns_inconsistent"] == []
    assert tk["registration_server_status"] == "ok"
    assert tk["whatsapp_web_status"] == "ok"  # a 400 answer is healthy for OONI
    r = rows(msmt)
    e2 = r[("e2", ep443.port)]
    assert e2["outcome"] == "dns/nxdomain"
    assert e2["blocking"] is True  # the control resolved it and connected
    assert e2["control"]["dns"] == "ok" and e2["control"]["tcp"] == "ok"
    assert r[("e1", ep5222.port)]["outcome"] == "ok"
    assert tk["x_app_verdict"] == "partially-blocked"
    assert tk["x_outcome"] == "dns/nxdomain"
    assert len(tk["x_app_control"]) == 2 * 2 + 2  # every (host, port)


async def test_linkedin_outage_is_down_not_blocked(tmp_path: Path) -> None:
    """Every host refuses, from the probe and from the control: down, not censorship."""
    certs = srv.Certs(tmp_path)
    port = srv.closed_port("127.0.0.61")
    async with AsyncExitStack() as stack:
        resolver = await stack.enter_async_context(
            srv.dns_server(zone_handler({"www.linkedin.lab.test": "127.0.0.61"}))
        )
        th = await stack.enter_async_context(
            th_server(
                {
                    "dns": {"failure": None, "addrs": ["127.0.0.61"]},
                    "tcp_connect": {
                        f"127.0.0.61:{port}": {
                            "status": False, "failure": "connection_refused_error"
                        }
                    },
                    "http_request": {"failure": "connection_refused_error"},
                }
            )
        )  # fmt: skip
        path = tmp_path / "linkedin.toml"
        path.write_text(
            'name = "linkedin"\ntitle = "L"\n'
            f'[[hosts]]\nid = "voyager"\nhost = "www.linkedin.lab.test"\nports = [{port}]\n'
            'path = "/voyager/api/me"\n'
        )
        ctx = make_ctx(resolver=resolver.address, ca_file=certs.ca_file, control_url=th)
        msmt = await run(path, ctx)
    tk = msmt["test_keys"]
    assert msmt["test_name"] == "app_endpoints" and msmt["input"] == "app:linkedin"
    assert tk["x_app"] == "linkedin"
    row = rows(msmt)[("voyager", port)]
    assert row["tcp"] == "connection_refused"
    assert row["outcome"] == "down/everywhere" and row["blocking"] is False
    assert tk["x_app_verdict"] == "down"
    assert tk["x_anomaly"] is None


async def test_bogon_answer_is_never_contacted(tmp_path: Path) -> None:
    certs = srv.Certs(tmp_path)
    zone = {"api.linkedin.lab.test": "10.10.34.35"}
    async with srv.dns_server(zone_handler(zone)) as resolver:
        path = tmp_path / "l.toml"
        path.write_text(
            'name = "linkedin"\ntitle = "L"\n'
            '[[hosts]]\nid = "api"\nhost = "api.linkedin.lab.test"\npath = "/v2/me"\n'
        )
        msmt = await run(path, make_ctx(resolver=resolver.address, ca_file=certs.ca_file))
    tk = msmt["test_keys"]
    assert tk["tcp_connect"] == []
    assert tk["x_skipped_endpoints"] == ["10.10.34.35:443"]
    assert rows(msmt)[("api", 443)]["outcome"] == "dns/bogon"


async def test_lab_apps_run_finishes_under_trio(tmp_path: Path) -> None:
    """measure_app returns within the target deadline even when every host is silent."""
    certs = srv.Certs(tmp_path)
    async with srv.tcp_server(srv.silent, host="127.0.0.71") as silent:
        async with srv.dns_server(zone_handler({})) as resolver:
            path = tmp_path / "s.toml"
            path.write_text(
                'name = "x"\ntitle = "X"\n'
                f'[[hosts]]\nid = "a"\nhost = "127.0.0.71"\nports = [{silent.port}]\n'
            )
            ctx = make_ctx(resolver=resolver.address, ca_file=certs.ca_file, timeout=0.5)
            with trio.fail_after(20):
                msmt = await run(path, ctx)
    assert rows(msmt)[("a", silent.port)]["outcome"] == "tls/timeout-after-clienthello"
