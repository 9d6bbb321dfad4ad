"""Geolocation end to end: the helper's whoami, discovery order, the helper's ip_info ASNs, and
`probe run` scrubbing the discovered public address from what it writes.

"Public" addresses are planted from documentation ranges (192.0.2.77, 2001:db8::77): an ASGI
wrapper in front of the real helper makes it see its client as 192.0.2.77, and the STUN
responder of test_geo_stun reports 2001:db8::77. Loopback web servers echo those addresses back,
as a page that shows the visitor's IP does; they must come out ``[scrubbed]``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from probe.cli import build_parser
from probe.commands import helper
from probe.config import Config, Geolocate, Timeouts
from probe.control.server import serve
from probe.geo.db import GeoDatabases
from probe.geo.locate import geolocate
from probe.geo.publicip import discover, whoami, whoami_url
from probe.stages.tls import make_ssl_context
from tests import volunteer
from tests.conformance.check import check_with_oonidata
from tests.unit.servers import closed_port, http_server, response, silent, tcp_server
from tests.unit.test_geo_db import write_asn_db, write_country_db
from tests.unit.test_geo_stun import stun_responder

PUBLIC_V4 = "192.0.2.77"
PUBLIC_V6 = "2001:db8::77"
SSL = make_ssl_context(verify=False)


@asynccontextmanager
async def helper_app(
    *options: str, client_ip: str | None = None
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """The real `probe helper serve` app on 127.0.0.1 (optionally seeing ``client_ip``)."""
    args = build_parser().parse_args(["helper", "serve", "--listen", "127.0.0.1:0", *options])
    records: list[dict[str, Any]] = []
    app, config = helper.build(args, log=records.append)
    config.errorlog = None

    async def planted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if client_ip is not None and scope["type"] == "http":
            scope = {**scope, "client": (client_ip, 40000)}
        await app(scope, receive, send)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, planted, config)
        yield binds[0] + "/", records
        nursery.cancel_scope.cancel()


def test_whoami_url_keeps_the_helper_prefix() -> None:
    assert whoami_url("https://th.example/") == "https://th.example/x/whoami"
    assert whoami_url("https://th.example") == "https://th.example/x/whoami"
    assert whoami_url("https://h.example/th/") == "https://h.example/th/x/whoami"


async def test_whoami_answers_the_client_address_and_logs_only_the_prefix() -> None:
    async with helper_app("--rate-limit", "3/min") as (url, records):
        first = await whoami(url, ssl_context=SSL, timeout=10)
        async with httpx.AsyncClient(trust_env=False) as client:
            post = await client.post(url + "x/whoami")
            limited = [(await client.get(url + "x/whoami")).status_code for _ in range(3)]
    assert (first.method, first.ip, first.failure) == ("whoami", "127.0.0.1", None)
    assert post.status_code == 405
    assert limited[-1] == 429  # rate-limited like the rest
    assert all(r["client"] == "127.0.0.0/24" for r in records)
    assert "127.0.0.1" not in json.dumps(records)


async def test_whoami_on_ipv6_mapped_and_planted_clients() -> None:
    async with helper_app(client_ip="::ffff:192.0.2.77") as (url, records):
        got = await whoami(url, ssl_context=SSL, timeout=10)
    assert got.ip == PUBLIC_V4
    assert records[0]["client"] == "192.0.2.0/24" and PUBLIC_V4 not in json.dumps(records)


async def test_whoami_timeout_is_the_configured_one(autojump_clock: Any) -> None:
    async with tcp_server(silent) as server:
        start = trio.current_time()
        got = await whoami(f"http://{server.address}/", ssl_context=SSL, timeout=4)
        assert trio.current_time() - start == 4
    assert (got.ip, got.failure) == (None, "generic_timeout_error")


async def test_whoami_answer_that_is_not_an_address() -> None:
    for body in (b'{"ip": "not-an-ip"}', b"[1, 2]", b"\xff", b'{"ip": "' + b"1" * 5000 + b'"}'):
        async with http_server([response(body)]) as server:
            got = await whoami(f"http://{server.address}/", ssl_context=SSL, timeout=5)
        assert (got.ip, got.failure) == (None, "json_parse_error")


async def test_oonis_helper_404_falls_through_to_stun() -> None:
    not_here = response(b'{"error": "not found"}', status="404 Not Found")
    async with http_server([not_here]) as ooni_th, stun_responder(PUBLIC_V6) as stun:
        attempts = await discover(
            control_url=f"http://{ooni_th.address}/",
            ssl_context=SSL,
            stun_servers=[f"127.0.0.1:{closed_port()}", stun.address],
            timeout=5,
        )
    assert [(a.method, a.ip, a.failure) for a in attempts] == [
        ("whoami", None, "http_request_failed"),
        ("stun", None, "connection_refused"),
        ("stun", PUBLIC_V6, None),
    ]
    assert ooni_th.requests[0].startswith(b"GET /x/whoami HTTP/1.1\r\n")


async def test_both_families_are_discovered_and_both_scrubbed() -> None:
    # a dual-stack volunteer: IPv4 behind NAT (192.0.2.77), IPv6 seen as 2001:db8::77; a server
    # given as a literal of the other family is skipped by each family's chain
    async with (
        stun_responder(PUBLIC_V4) as v4,
        stun_responder(PUBLIC_V6, host="::1") as v6,
    ):
        config = Config(geolocate=Geolocate(stun_servers=(v4.address, v6.address)))
        with GeoDatabases(asn=None, country=None) as dbs:
            geo = await geolocate(config, ssl_context=SSL, databases=dbs)
    assert geo.public_ip == PUBLIC_V4 and geo.other_ips == (PUBLIC_V6,)
    assert geo.scrub_addresses() == (PUBLIC_V4, PUBLIC_V6)
    assert [(a.server, a.ip) for a in geo.attempts] == [
        (v4.address, PUBLIC_V4),
        (v6.address, PUBLIC_V6),
    ]
    assert len(v4.requests) == len(v6.requests) == 1


async def test_a_blackholed_ipv6_costs_one_timeout_at_most(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        stun_responder(PUBLIC_V4) as v4,
        stun_responder(PUBLIC_V6, host="::1", mode="silent") as dead1,
        stun_responder(PUBLIC_V6, host="::1", mode="silent") as dead2,
    ):
        servers = (v4.address, dead1.address, dead2.address)
        config = Config(geolocate=Geolocate(stun_servers=servers), timeouts=Timeouts(geolocate=5))
        start = trio.current_time()
        with GeoDatabases(asn=None, country=None) as dbs:
            geo = await geolocate(config, ssl_context=SSL, databases=dbs)
        assert trio.current_time() - start == 5  # not 10: the IPv6 chain has one timeout
    assert geo.public_ip == PUBLIC_V4 and geo.other_ips == ()
    assert len(dead1.requests) == 1 and dead2.requests == []


async def test_nothing_answers(tmp_path: Path) -> None:
    config = Config(
        control_url=f"http://127.0.0.1:{closed_port()}/",
        geolocate=Geolocate(stun_servers=(f"127.0.0.1:{closed_port()}",)),
    )
    with GeoDatabases(asn=None, country=None) as dbs:
        geo = await geolocate(config, ssl_context=SSL, databases=dbs)
    assert geo.public_ip is None and geo.ip_source == "none"
    assert [a.failure for a in geo.attempts] == ["connection_refused", "connection_refused"]
    assert geo.annotations()["x_geo_db"] == "none"


async def test_helper_fills_ip_info_asns(tmp_path: Path) -> None:
    asn_db = write_asn_db(tmp_path / "asn.mmdb", {"127.0.0.0/8": (64512, "Loopback Net")})
    async with (
        http_server([response(b"<title>x</title>")]) as site,
        helper_app("--lab-allow-ranges", "127.0.0.0/8", "--asn-db", str(asn_db)) as (url, _),
    ):
        request = {
            "http_request": f"http://127.0.0.1:{site.port}/",
            "http_request_headers": {},
            "tcp_connect": [f"127.0.0.1:{site.port}"],
        }
        async with httpx.AsyncClient(trust_env=False) as client:
            body = (await client.post(url, content=json.dumps(request).encode())).json()
    assert body["ip_info"]["127.0.0.1"]["asn"] == 64512


def test_helper_rejects_a_bad_asn_db(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"nope")
    args = build_parser().parse_args(["helper", "serve", "--asn-db", str(bad)])
    try:
        helper.build(args)
    except ValueError as exc:
        assert "--asn-db" in str(exc)
    else:
        raise AssertionError("a broken --asn-db was accepted")


# --- probe run --------------------------------------------------------------------------------


async def _probe_run(
    *args: str, data_home: Path, volunteer: dict[str, str]
) -> tuple[int, str, list[dict[str, Any]], str]:
    """``probe run`` as the volunteer (consent given: the ``volunteer_env`` fixture)."""
    out = data_home / "out.jsonl"
    env = {
        **{k: v for k, v in volunteer.items() if "proxy" not in k.lower()},
        "XDG_DATA_HOME": str(data_home),
    }
    proc = await trio.run_process(
        [sys.executable, "-m", "probe", "run", "--output", str(out), "--no-progress", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )
    text = out.read_text() if out.exists() else ""
    rows = [json.loads(line) for line in text.splitlines()]
    return proc.returncode, proc.stderr.decode(), rows, text


async def test_run_scrubs_the_address_whoami_reported(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    asn_db = write_asn_db(tmp_path / "a.mmdb", {"192.0.2.0/24": (64500, "Example Net")})
    cc_db = write_country_db(tmp_path / "c.mmdb", {"192.0.2.0/24": "DE"})
    echo = response(
        f"<html><title>What is my IP</title><p>You are {PUBLIC_V4}</p></html>".encode(),
        headers=[f"X-Client-IP: {PUBLIC_V4}", "Content-Type: text/html"],
    )
    async with (
        http_server([echo]) as site,
        helper_app("--lab-allow-ranges", "127.0.0.0/8", client_ip=PUBLIC_V4) as (url, records),
    ):
        code, stderr, rows, text = await _probe_run(
            "--input",
            f"http://{site.address}/",
            "--control",
            url,
            "--resolver",
            "127.0.0.1:9",
            "--timeout-dns",
            "1",
            "--asn-db",
            str(asn_db),
            "--country-db",
            str(cc_db),
            "--stun-server",
            f"127.0.0.1:{closed_port()}",
            data_home=tmp_path,
            volunteer=volunteer_env,
        )
    assert code == 0, stderr
    assert any(r["path"] == "/x/whoami" and r["status"] == 200 for r in records)
    (m,) = rows
    assert PUBLIC_V4 not in text and PUBLIC_V4 not in stderr
    body = m["test_keys"]["requests"][0]["response"]["body"]
    assert "You are [scrubbed]" in body
    assert m["test_keys"]["requests"][0]["response"]["headers"]["X-Client-IP"] == "[scrubbed]"
    assert (m["probe_asn"], m["probe_cc"], m["probe_network_name"]) == (
        "AS64500",
        "DE",
        "Example Net",
    )
    assert "_DE_64500_n0_" in m["report_id"]  # minted after geolocation
    notes = m["annotations"]
    assert notes["x_geo_ip_source"] == "whoami"
    assert notes["x_geo_asn_source"] == notes["x_geo_cc_source"] == "geoip"
    assert notes["x_geo_db"].startswith("DBIP-ASN-Lite")
    assert "geolocation: public IP found via whoami" in stderr
    assert check_with_oonidata(text.splitlines()) == []


async def test_run_with_stun_flags_and_privacy(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    asn_db = write_asn_db(tmp_path / "a.mmdb", {"2001:db8::/32": (64501, "Six Net")})
    echo = response(f"seen from {PUBLIC_V6} and 2001:0db8:0000:0000:0000:0000:0000:0077".encode())
    async with http_server([echo]) as site, stun_responder(PUBLIC_V6) as stun:
        code, stderr, rows, text = await _probe_run(
            "--input",
            f"http://{site.address}/",
            "--no-control",
            "--resolver",
            "127.0.0.1:9",
            "--timeout-dns",
            "1",
            "--asn-db",
            str(asn_db),
            "--stun-server",
            stun.address,
            "--probe-cc",
            "RU",
            "--no-include-asn",
            data_home=tmp_path,
            volunteer=volunteer_env,
        )
    assert code == 0, stderr
    (m,) = rows
    assert "2001:db8::77" not in text.lower() and ":0077" not in text
    assert m["test_keys"]["requests"][0]["response"]["body"].count("[scrubbed]") == 2
    assert (m["probe_asn"], m["probe_cc"], m["probe_network_name"]) == ("AS0", "RU", "")
    assert "_RU_0_n0_" in m["report_id"]
    notes = m["annotations"]
    assert (notes["x_geo_ip_source"], notes["x_geo_cc_source"]) == ("stun", "flag")
    assert len(stun.requests) == 1


async def test_config_file_turns_geolocation_off(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('probe_asn = "AS3"\ngeolocate = false\n', encoding="utf-8")
    volunteer.agree(cfg)  # the volunteer's own file, consent added by `probe onboard --yes`
    async with http_server([response(b"hi")]) as site, stun_responder(PUBLIC_V4) as stun:
        code, stderr, rows, _ = await _probe_run(
            "--input",
            f"http://{site.address}/",
            "--no-control",
            "--resolver",
            "127.0.0.1:9",
            "--config",
            str(cfg),
            "--stun-server",
            stun.address,
            data_home=tmp_path,
            volunteer=volunteer_env,
        )
    assert code == 0, stderr
    assert stun.requests == []
    (m,) = rows
    assert (m["probe_asn"], m["probe_cc"], m["annotations"]["x_geo_ip_source"]) == (
        "AS3",
        "ZZ",
        "off",
    )
    lines = [x for x in stderr.splitlines() if "geolocation" in x]
    assert lines == [
        "probe run: geolocation off: only interface addresses are scrubbed; "
        "ASN/CC from flags (AS3, ZZ)"
    ]


async def test_bad_geolocation_options_fail_before_measuring(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    for args, needle in (
        (["--stun-server", "nohost"], "--stun-server"),
        (["--asn-db", str(tmp_path / "missing.mmdb")], "geolocation database"),
    ):
        code, stderr, rows, _ = await _probe_run(
            "--input",
            "http://a.test/",
            "--no-control",
            *args,
            data_home=tmp_path,
            volunteer=volunteer_env,
        )
        assert code == 2 and needle in stderr and len(stderr.strip().splitlines()) == 1
        assert rows == []
