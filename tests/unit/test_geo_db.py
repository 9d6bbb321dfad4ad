"""MaxMind-format databases: lookups, the identity precedence, `probe geoip update` from a real
loopback HTTP server, and `probe geoip lookup`.

The .mmdb files are built here with the ``mmdb-writer`` package (:func:`write_asn_db`,
:func:`write_country_db`, used by the other geolocation tests too), in the layout of DB-IP's
lite databases. Addresses are documentation ranges (192.0.2.0/24, 2001:db8::/32).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from probe.config import Config, Privacy
from probe.geo.db import GeoDatabaseError, GeoDatabases, GeoInfo, data_dir, open_reader
from probe.geo.locate import Geolocation, apply, summary
from probe.geo.update import UpdateError, file_url, months, update
from tests.unit.servers import TCPServer, read_head, response, tcp_server

ASN_TYPE = "DBIP-ASN-Lite (compat=GeoLite2-ASN)"
COUNTRY_TYPE = "DBIP-Country-Lite"


def write_asn_db(
    path: Path, networks: dict[str, tuple[int, str]], *, db_type: str = ASN_TYPE
) -> Path:
    writer = MMDBWriter(ip_version=6, database_type=db_type, ipv4_compatible=True)
    for cidr, (asn, org) in networks.items():
        writer.insert_network(
            IPSet([cidr]),
            {"autonomous_system_number": asn, "autonomous_system_organization": org},
        )
    writer.to_db_file(str(path))
    return path


def write_country_db(path: Path, networks: dict[str, str], *, db_type: str = COUNTRY_TYPE) -> Path:
    writer = MMDBWriter(ip_version=6, database_type=db_type, ipv4_compatible=True)
    for cidr, cc in networks.items():
        writer.insert_network(IPSet([cidr]), {"country": {"iso_code": cc, "names": {"en": cc}}})
    writer.to_db_file(str(path))
    return path


def test_databases(tmp_path: Path) -> None:
    asn = write_asn_db(
        tmp_path / "a.mmdb",
        {"192.0.2.0/24": (64500, "Example Net"), "2001:db8::/32": (64501, "Six Net")},
    )
    country = write_country_db(tmp_path / "c.mmdb", {"192.0.2.0/24": "de"})
    with GeoDatabases.open(asn_db=asn, country_db=country) as dbs:
        assert dbs.lookup("192.0.2.77") == GeoInfo(asn=64500, network_name="Example Net", cc="DE")
        assert dbs.lookup("2001:db8::1") == GeoInfo(asn=64501, network_name="Six Net", cc=None)
        assert dbs.lookup("198.51.100.1") == GeoInfo()
        assert dbs.lookup("not an ip") == GeoInfo()
        desc = dbs.description()
    assert desc.startswith(ASN_TYPE + " 20") and "; " + COUNTRY_TYPE + " 20" in desc


def test_missing_or_broken_databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert data_dir() == tmp_path / "data" / "censorprobe" / "geoip"
    with GeoDatabases.open(asn_db=None, country_db=None) as dbs:  # none installed: fine
        assert not dbs and dbs.description() == "none"
    with pytest.raises(GeoDatabaseError, match="no such database"):
        GeoDatabases.open(asn_db=tmp_path / "nope.mmdb", country_db=None)
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database" * 10)
    with pytest.raises(GeoDatabaseError, match="not a MaxMind DB"):
        open_reader(broken)
    data_dir().mkdir(parents=True)
    (data_dir() / "country.mmdb").write_bytes(b"broken")  # an installed broken file is reported
    with pytest.raises(GeoDatabaseError):
        GeoDatabases.open(asn_db=None, country_db=None)


def _geo(info: GeoInfo) -> Geolocation:
    return Geolocation(public_ip="192.0.2.77", ip_source="stun", info=info, db="test")


FOUND = GeoInfo(asn=64500, network_name="Example Net", cc="DE")


@pytest.mark.parametrize(
    ("asn_explicit", "cc_explicit", "info", "want"),
    [
        (False, False, FOUND, ("AS64500", "DE", "Example Net", "geoip", "geoip")),
        (True, False, FOUND, ("AS12389", "DE", "", "flag", "geoip")),
        (False, True, FOUND, ("AS64500", "RU", "Example Net", "geoip", "flag")),
        (False, False, GeoInfo(), ("AS0", "ZZ", "", "none", "none")),
        (False, False, GeoInfo(asn=64500), ("AS64500", "ZZ", "", "geoip", "none")),
    ],
)
def test_precedence_flags_then_geolocation_then_unknown(
    asn_explicit: bool, cc_explicit: bool, info: GeoInfo, want: tuple[str, ...]
) -> None:
    config = Config(probe_asn="AS12389" if asn_explicit else "AS0", probe_cc="RU")
    config = config if cc_explicit else Config(probe_asn=config.probe_asn)
    new, geo = apply(config, _geo(info), asn_explicit=asn_explicit, cc_explicit=cc_explicit)
    assert (new.probe_asn, new.probe_cc, new.probe_network_name) == want[:3]
    assert (geo.asn_source, geo.cc_source) == want[3:]
    annotations = geo.annotations()
    assert all(isinstance(v, str) for v in annotations.values())
    assert "192.0.2.77" not in repr(annotations) and "192.0.2.77" not in summary(geo, new)


def test_flag_equal_to_the_geolocated_asn_keeps_the_network_name() -> None:
    new, _ = apply(Config(probe_asn="AS64500"), _geo(FOUND), asn_explicit=True, cc_explicit=False)
    assert new.probe_network_name == "Example Net"


def test_privacy_switches_still_apply_in_the_envelope() -> None:
    from datetime import datetime as dt

    from probe.context import RunContext
    from probe.envelope import envelope
    from probe.stages.tls import make_ssl_context

    config, _ = apply(Config(), _geo(FOUND), asn_explicit=False, cc_explicit=False)
    ctx_ssl = make_ssl_context(verify=False)
    for privacy, want in (
        (Privacy(), ("AS64500", "DE", "Example Net")),
        (Privacy(include_asn=False, include_cc=False), ("AS0", "ZZ", "")),
    ):
        from dataclasses import replace

        from probe.registry import spec

        ctx = RunContext(
            config=replace(config, privacy=privacy),
            ssl_context=ctx_ssl,
            diag_ssl_context=ctx_ssl,
            control_ssl_context=ctx_ssl,
            udp_resolver=None,
            report_id="r",
            test_start_time="2026-01-01 00:00:00",
        )
        env = envelope(
            ctx,
            spec("web_connectivity"),
            input=None,
            started=dt.now(UTC),
            runtime=0.0,
            test_keys={},
        )
        assert (env["probe_asn"], env["probe_cc"], env["probe_network_name"]) == want


# --- probe geoip update -----------------------------------------------------------------------


@asynccontextmanager
async def file_server(files: dict[str, bytes]) -> AsyncIterator[TCPServer]:
    """HTTP/1.1 on 127.0.0.1: GET /<name> answers ``files[name]``, anything else 404."""
    paths: list[str] = []

    async def handle(stream: trio.abc.Stream) -> None:
        head = await read_head(stream)
        if b"\r\n\r\n" not in head:
            return
        path = head.split(b" ", 2)[1].decode()
        paths.append(path)
        body = files.get(path.lstrip("/"))
        if body is None:
            await stream.send_all(response(b"not found", status="404 Not Found"))
        else:
            await stream.send_all(response(body))

    async with tcp_server(handle) as server:
        server.requests = paths  # type: ignore[assignment]
        yield server


NOW = datetime(2026, 1, 3, tzinfo=UTC)


def test_months_wrap_the_year() -> None:
    assert months(NOW) == ("2026-01", "2025-12")
    assert months(datetime(2026, 7, 31, 23, tzinfo=UTC)) == ("2026-07", "2026-06")
    assert file_url("https://m.test/free", "asn", "2026-01") == (
        "https://m.test/free/dbip-asn-lite-2026-01.mmdb.gz"
    )


async def test_update_falls_back_to_last_month_and_replaces_atomically(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    asn = write_asn_db(src / "a.mmdb", {"192.0.2.0/24": (64500, "Example Net")}).read_bytes()
    country = write_country_db(src / "c.mmdb", {"192.0.2.0/24": "DE"}).read_bytes()
    files = {
        "free/dbip-asn-lite-2026-01.mmdb.gz": gzip.compress(asn),
        "free/dbip-country-lite-2025-12.mmdb.gz": gzip.compress(country),  # January not out
    }
    dest = tmp_path / "geoip"
    dest.mkdir()
    (dest / "country.mmdb").write_bytes(b"old")
    async with file_server(files) as server:
        done = await update(
            dest, base_url=f"http://{server.address}/free/", now=NOW, trust_env=False
        )
    assert [d.kind for d in done] == ["asn", "country"]
    assert done[1].url.endswith("dbip-country-lite-2025-12.mmdb.gz")
    assert server.requests == [
        "/free/dbip-asn-lite-2026-01.mmdb.gz",
        "/free/dbip-country-lite-2026-01.mmdb.gz",
        "/free/dbip-country-lite-2025-12.mmdb.gz",
    ]
    assert sorted(p.name for p in dest.iterdir()) == ["asn.mmdb", "country.mmdb"]  # no temp left
    with GeoDatabases.open(asn_db=dest / "asn.mmdb", country_db=dest / "country.mmdb") as dbs:
        assert dbs.lookup("192.0.2.1") == GeoInfo(asn=64500, network_name="Example Net", cc="DE")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (gzip.compress(b"not a database at all"), "does not open"),
        (b"not gzip", "not a gzip file"),
        (None, "no database found"),
        ("country-as-asn", "of type"),
    ],
)
async def test_update_never_installs_a_bad_database(
    tmp_path: Path, payload: bytes | str | None, why: str
) -> None:
    if payload == "country-as-asn":
        payload = gzip.compress(
            write_country_db(tmp_path / "c.mmdb", {"192.0.2.0/24": "DE"}).read_bytes()
        )
    files = {} if payload is None else {"dbip-asn-lite-2026-01.mmdb.gz": payload}
    dest = tmp_path / "geoip"
    dest.mkdir()
    (dest / "asn.mmdb").write_bytes(b"the old one")
    async with file_server(files) as server:  # type: ignore[arg-type]
        with pytest.raises(UpdateError, match=why):
            await update(dest, base_url=f"http://{server.address}", now=NOW, trust_env=False)
    assert (dest / "asn.mmdb").read_bytes() == b"the old one"
    assert sorted(p.name for p in dest.iterdir()) == ["asn.mmdb"]


async def test_cli_update_and_lookup(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    month = datetime.now(UTC).strftime("%Y-%m")
    files = {
        f"dbip-asn-lite-{month}.mmdb.gz": gzip.compress(
            write_asn_db(src / "a.mmdb", {"192.0.2.0/24": (64500, "Example Net")}).read_bytes()
        ),
        f"dbip-country-lite-{month}.mmdb.gz": gzip.compress(
            write_country_db(src / "c.mmdb", {"192.0.2.0/24": "DE"}).read_bytes()
        ),
    }
    env = {
        **{k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    async with file_server(files) as server:
        proc = await trio.run_process(
            [
                sys.executable,
                "-m",
                "probe",
                "geoip",
                "update",
                "--base-url",
                f"http://{server.address}/",
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "DB-IP" in out and "CC-BY-4.0" in out
    assert (tmp_path / "data" / "censorprobe" / "geoip" / "asn.mmdb").is_file()
    look = subprocess.run(
        [sys.executable, "-m", "probe", "geoip", "lookup", "192.0.2.9"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert look.returncode == 0, look.stderr
    assert "asn: AS64500\nnetwork_name: Example Net\ncc: DE\n" in look.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "probe", "geoip", "lookup", "nope"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not an IP" in bad.stderr
