"""The app runner on the fake network, in virtual time: address order, stages, timeouts.

tests/unit/test_apps_run.py runs the same runner against real loopback servers; here the
network is scripted (tests/fakes) so that every duration and every attempt is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from probe.apps.runner import measure_app
from probe.apps.spec import load_app_file
from probe.context import RunContext
from probe.registry import app_test
from tests.conformance.check import check_with_oonidata
from tests.fakes import servers as fs
from tests.fakes.context import TIMEOUTS, run_context
from tests.fakes.network import Host, dropped, fake_network, refused, serve
from tests.unit import servers

A, B, C = "198.18.2.1", "198.18.2.2", "198.18.2.3"


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


def app_file(tmp_path: Path, hosts: str) -> Path:
    path = tmp_path / "demo.toml"
    path.write_text(f'name = "demo"\ntitle = "Demo app"\n{hosts}', encoding="utf-8")
    return path


async def run_app(path: Path, ctx: RunContext) -> dict[str, Any]:
    app = load_app_file(path)
    return await measure_app(app, ctx=ctx, test=app_test(app.ooni_test))


def tagged(events: list[dict[str, Any]], host_id: str) -> list[dict[str, Any]]:
    return [e for e in events if f"x_app_host={host_id}" in (e.get("tags") or [])]


async def test_addresses_are_tried_one_after_the_other(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, tmp_path: Path
) -> None:
    site = fs.tls(certs.server_context("api.demo.test"), fs.http(fs.Reply(status=401)))
    endpoints = {f"{A}:443": dropped(), f"{B}:443": refused(delay=0.5), f"{C}:443": serve(site)}
    path = app_file(tmp_path, '[[hosts]]\nid = "api"\nhost = "api.demo.test"\n')
    async with fake_network(endpoints=endpoints, hosts={"api.demo.test": [A, B, C]}) as net:
        msmt = await run_app(path, run_context(net, ca_file=certs.ca_file))
    # one attempt per address, in resolution order, each after the previous one failed
    assert [(c.ip, c.t) for c in net.connects] == [
        (A, 0.0), (B, TIMEOUTS.connect), (C, TIMEOUTS.connect + 0.5),
    ]  # fmt: skip
    tk = msmt["test_keys"]
    assert [e["status"]["failure"] for e in tk["tcp_connect"]] == [
        "generic_timeout_error", "connection_refused", None,
    ]  # fmt: skip
    assert tk["requests"][0]["response"]["code"] == 401
    assert (msmt["test_name"], msmt["input"], tk["x_app"]) == ("app_endpoints", "app:demo", "demo")
    assert check_with_oonidata([json.dumps(msmt)]) == []


async def test_each_host_stops_at_its_stage(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, tmp_path: Path
) -> None:
    log = fs.HTTPLog()
    site = fs.tls(certs.server_context("cdn.demo.test"), fs.http(fs.page("cdn"), log))
    hosts = (
        '[[hosts]]\nid = "cdn"\nhost = "cdn.demo.test"\nstage = "tls"\n'
        '[[hosts]]\nid = "push"\nhost = "push.demo.test"\nstage = "tcp"\nports = [5222]\n'
        '[[hosts]]\nid = "name"\nhost = "name.demo.test"\nstage = "dns"\n'
    )
    endpoints = {f"{A}:443": serve(site), f"{B}:5222": serve(fs.silent)}
    names = {"cdn.demo.test": [A], "push.demo.test": [B], "name.demo.test": Host(error=-2)}
    async with fake_network(endpoints=endpoints, hosts=names) as net:
        msmt = await run_app(app_file(tmp_path, hosts), run_context(net, ca_file=certs.ca_file))
    tk = msmt["test_keys"]
    assert [h["failure"] for h in tagged(tk["tls_handshakes"], "cdn")] == [None]
    assert tagged(tk["requests"], "cdn") == [] and log.requests == []
    assert [e["status"]["success"] for e in tagged(tk["tcp_connect"], "push")] == [True]
    assert tagged(tk["tls_handshakes"], "push") == []
    assert [q["failure"] for q in tagged(tk["queries"], "name")] == ["dns_nxdomain_error"]
    assert not net.connected_to("name.demo.test")


async def test_stage_timeouts_in_virtual_time(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, tmp_path: Path
) -> None:
    hang_tls = fs.sni_censor({"tls.demo.test"}, action="drop", then=fs.silent)
    hang_http = fs.tls(certs.server_context("http.demo.test"), fs.http(fs.Reply(instead=fs.HANG)))
    hosts = (
        '[[hosts]]\nid = "tcp"\nhost = "tcp.demo.test"\n'
        '[[hosts]]\nid = "tls"\nhost = "tls.demo.test"\n'
        '[[hosts]]\nid = "http"\nhost = "http.demo.test"\n'
        '[[hosts]]\nid = "dns"\nhost = "dns.demo.test"\n'
    )
    endpoints = {f"{A}:443": dropped(), f"{B}:443": serve(hang_tls), f"{C}:443": serve(hang_http)}
    names = {
        "tcp.demo.test": [A],
        "tls.demo.test": [B],
        "http.demo.test": [C],
        "dns.demo.test": Host(hang=True),
    }
    async with fake_network(endpoints=endpoints, hosts=names) as net:
        msmt = await run_app(app_file(tmp_path, hosts), run_context(net, ca_file=certs.ca_file))
    tk = msmt["test_keys"]
    (tcp,) = tagged(tk["tcp_connect"], "tcp")
    (tls,) = tagged(tk["tls_handshakes"], "tls")
    (http,) = tagged(tk["requests"], "http")
    (dns,) = tagged(tk["queries"], "dns")
    for event, timeout in ((tcp, TIMEOUTS.connect), (tls, TIMEOUTS.tls), (http, TIMEOUTS.http),
                           (dns, TIMEOUTS.dns)):  # fmt: skip
        failure = event["status"]["failure"] if "status" in event else event["failure"]
        assert failure == "generic_timeout_error"
        assert event["t"] - event["t0"] == timeout


async def test_app_deadline(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, tmp_path: Path
) -> None:
    hosts = '[[hosts]]\nid = "slow"\nhost = "slow.demo.test"\n'
    timeouts = TIMEOUTS.__class__(connect=100.0, target=30.0)
    async with fake_network(
        endpoints={f"{A}:443": dropped()}, hosts={"slow.demo.test": [A]}
    ) as net:
        msmt = await run_app(
            app_file(tmp_path, hosts), run_context(net, ca_file=certs.ca_file, timeouts=timeouts)
        )
    tk = msmt["test_keys"]
    assert (tk["failure"], tk["failed_operation"]) == ("generic_timeout_error", "top_level")
    assert msmt["test_runtime"] == 30.0
