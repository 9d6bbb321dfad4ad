"""Issue 12 item 1: for a public target no special-purpose address is ever contacted, on every
path (first URL, redirects by name or IP literal, diagnostic retries, app hosts). The fake
network logs every connect attempt, so each test proves the probe did NOT try."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import trio
import trio.testing

from probe.apps.runner import measure_app
from probe.apps.spec import load_app_file
from probe.experiment import _connect, _Flow, _host_retry, _sni_retry, measure_web
from probe.policy import ConnectPolicy
from probe.registry import app_test, spec
from probe.trace import Trace
from tests.fakes import servers as fs
from tests.fakes.context import PUBLIC, run_context
from tests.fakes.network import Host, fake_network, serve
from tests.unit import servers

SITE = "198.18.1.1"
#: every kind of special-purpose address a hostile answer or redirect may name
PRIVATE = [
    "169.254.169.254", "10.0.0.1", "192.168.1.1", "172.16.0.1", "127.0.0.1", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::", "fc00::1",
    "fd00::2", "fe80::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "2002:a00:1::1",
    "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::7f00:1",
]  # fmt: skip


def literal(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", PRIVATE)
def test_public_target_never_allows_a_special_purpose_address(ip: str) -> None:
    assert not ConnectPolicy.for_target("www.example.com").allows(ip)
    assert not ConnectPolicy.for_target("93.184.216.34").allows(ip)
    assert not ConnectPolicy.for_target("www.example.com", PUBLIC).allows(ip)


def test_public_addresses_lab_ranges_and_explicit_private_targets() -> None:
    public = ConnectPolicy.for_target("www.example.com")
    assert public.allows("93.184.216.34") and public.allows("2a00:1450:4001::1")
    assert public.allows("64:ff9b::5db8:d822")  # DNS64's answer for 93.184.216.34
    assert not public.allows("198.18.1.1")  # the lab's range is special-purpose ...
    assert ConnectPolicy.for_target("www.example.com", PUBLIC).allows("198.18.1.1")  # ... but lab
    assert not public.allows("not-an-ip") and not public.allows("")
    explicit = ConnectPolicy.for_target("192.168.1.1")  # the user asked for their router
    assert not explicit.target_is_public and explicit.allows("192.168.1.1")
    usable, skipped = public.split(["93.184.216.34", "10.0.0.1", "::1"], 443)
    assert (usable, skipped) == (["93.184.216.34"], ["10.0.0.1:443", "[::1]:443"])


# --- web: every path ---------------------------------------------------------------------------


@pytest.mark.parametrize("ip", PRIVATE)
async def test_redirect_to_a_private_ip_literal_is_not_followed(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, ip: str
) -> None:
    """``302 Location: http://169.254.169.254/`` from a public site: listed, never contacted
    (the old orchestrator followed it)."""
    site = fs.http(fs.redirect(f"http://{literal(ip)}/latest/meta-data/"))
    async with fake_network(endpoints={f"{SITE}:80": serve(site)}, hosts={"s.test": [SITE]}) as net:
        msmt = await measure_web("http://s.test/", ctx=run_context(net, ca_file=certs.ca_file))
    assert [c.ip for c in net.connects] == [SITE]
    tk = msmt["test_keys"]
    assert tk["x_skipped_endpoints"] == [f"{literal(ip)}:80"]
    assert all(e["ip"] == SITE for e in tk["tcp_connect"])


async def test_redirect_to_a_name_resolving_privately_is_not_followed(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    site = fs.http(fs.redirect("https://internal.s.test/admin"))
    hosts = {"s.test": [SITE], "internal.s.test": ["10.1.2.3", "fd00::2"]}
    async with fake_network(endpoints={f"{SITE}:80": serve(site)}, hosts=hosts) as net:
        msmt = await measure_web("http://s.test/", ctx=run_context(net, ca_file=certs.ca_file))
    assert [c.ip for c in net.connects] == [SITE]
    assert msmt["test_keys"]["x_skipped_endpoints"] == ["10.1.2.3:443", "[fd00::2]:443"]


@pytest.mark.parametrize("ip", ["127.0.0.1", "192.168.1.1", "::1", "169.254.169.254"])
async def test_first_url_resolving_privately_is_never_contacted(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, ip: str
) -> None:
    async with fake_network(hosts={"s.test": [ip, SITE]}) as net:
        msmt = await measure_web("https://s.test/", ctx=run_context(net, ca_file=certs.ca_file))
    assert [c.ip for c in net.connects] == [SITE]
    assert msmt["test_keys"]["x_skipped_endpoints"] == [f"{literal(ip)}:443"]


async def test_outside_the_lab_its_range_is_special_purpose_too(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    async with fake_network(hosts={"s.test": [SITE]}) as net:
        ctx = run_context(net, ca_file=certs.ca_file, public=False)
        msmt = await measure_web("http://s.test/", ctx=ctx)
    assert net.connects == [] and msmt["test_keys"]["x_skipped_endpoints"] == [f"{SITE}:80"]


async def test_an_explicit_private_target_is_measured(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """The user asked to measure their router: that is not a redirect nor a DNS lie."""
    router = fs.http(fs.redirect("http://10.0.0.2/login"))
    async with fake_network(endpoints={"192.168.1.1:80": serve(router)}) as net:
        msmt = await measure_web("http://192.168.1.1/", ctx=run_context(net, ca_file=certs.ca_file))
    assert [c.ip for c in net.connects] == ["192.168.1.1", "10.0.0.2"]
    assert msmt["test_keys"]["x_skipped_endpoints"] == []


async def test_diagnostic_retries_ask_the_policy_too(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs
) -> None:
    """The retries go to an address already contacted, so the main flow never hands them a
    forbidden one; the gate is in ``_connect`` all the same (every connect passes it)."""
    async with fake_network() as net:
        ctx = run_context(net, ca_file=certs.ca_file)
        flow = _Flow(
            trace=Trace(), ctx=ctx, test=spec("web_connectivity"),
            policy=ConnectPolicy.for_target("s.test", ctx.config.public_ranges),
        )  # fmt: skip
        await _sni_retry(flow, "10.0.0.1", 443, ["depth=0"])
        await _host_retry(flow, "http://s.test/", "169.254.169.254", 80, ["depth=0"])
        none = await _connect(
            flow, "::1", 443, server_name="s.test", ssl_context=None, tags=["depth=0"]
        )
    assert none is None
    assert net.connects == [] and flow.trace.tcp_connect == []
    assert flow.skipped == ["10.0.0.1:443", "169.254.169.254:80", "[::1]:443"]


# --- apps ----------------------------------------------------------------------------------------


async def test_app_host_resolving_privately_is_never_contacted(
    autojump_clock: trio.testing.MockClock, certs: servers.Certs, tmp_path: Path
) -> None:
    path = tmp_path / "demo.toml"
    path.write_text(
        'name = "demo"\ntitle = "Demo"\n'
        '[[hosts]]\nid = "api"\nhost = "api.demo.test"\nstage = "tcp"\nports = [443, 5222]\n'
        '[[hosts]]\nid = "fixed"\nhost = "10.9.9.9"\nstage = "tcp"\n',
        encoding="utf-8",
    )
    app = load_app_file(path)
    hosts = {"api.demo.test": Host(["169.254.169.254", "::1", SITE])}
    endpoints = {f"{SITE}:443": serve(fs.silent), f"{SITE}:5222": serve(fs.silent)}
    async with fake_network(hosts=hosts, endpoints=endpoints) as net:
        msmt = await measure_app(
            app, ctx=run_context(net, ca_file=certs.ca_file), test=app_test(app.ooni_test)
        )
    # the name's private answers are skipped; the app file's own fixed address is explicit
    assert sorted({c.ip for c in net.connects}) == ["10.9.9.9", SITE]
    assert msmt["test_keys"]["x_skipped_endpoints"] == sorted(
        ["169.254.169.254:443", "169.254.169.254:5222", "[::1]:443", "[::1]:5222"]
    )


def test_the_private_list_is_special_purpose() -> None:
    for ip in PRIVATE:
        addr = ipaddress.ip_address(ip)
        mapped = getattr(addr, "ipv4_mapped", None) or getattr(addr, "sixtofour", None)
        if ip.startswith("64:ff9b:"):  # NAT64: the IPv4 address in the last 32 bits
            mapped = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        real = mapped or addr
        assert not real.is_global or real.is_multicast, ip
