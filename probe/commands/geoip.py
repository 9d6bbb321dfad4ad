"""`probe geoip`: fetch the ASN/country databases (DB-IP lite) and show what they say about an IP.

``probe geoip update`` downloads on the volunteer's machine (see :mod:`probe.geo.update`);
``probe geoip lookup IP`` prints the ASN, organisation and country the databases give, so the
volunteer can check what ``probe run`` will write for their network before publishing anything.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from probe import inputs
from probe.commands import usage_of
from probe.commands.argtypes import seconds_arg

HELP = "download the IP-to-ASN/country databases (DB-IP lite) and look addresses up in them"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="geoip_command", metavar="ACTION")
    upd = sub.add_parser(
        "update",
        help="download DB-IP's free lite ASN and country databases (CC-BY-4.0)",
        description="Download DB-IP's asn-lite and country-lite databases, verify they open, "
        "then replace the old files atomically.",
    )
    upd.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="where to install them (default $XDG_DATA_HOME/censorprobe/geoip)",
    )
    upd.add_argument(
        "--base-url",
        metavar="URL",
        help="mirror serving dbip-{asn,country}-lite-YYYY-MM.mmdb.gz "
        "(default https://download.db-ip.com/free/)",
    )
    upd.add_argument(
        "--timeout",
        type=seconds_arg(3600.0),
        default=120.0,
        metavar="S",
        help="per-request timeout (120)",
    )
    upd.set_defaults(func=run_update)
    look = sub.add_parser(
        "lookup", help="print the ASN, network name and country of IP", description=HELP
    )
    look.add_argument("ip", metavar="IP")
    look.add_argument("--asn-db", type=Path, metavar="PATH", help="ASN database (.mmdb)")
    look.add_argument("--country-db", type=Path, metavar="PATH", help="country database (.mmdb)")
    look.set_defaults(func=run_lookup)
    parser.set_defaults(func=usage_of(parser))


def _fail(message: str) -> int:
    print(f"probe geoip: error: {message}", file=sys.stderr)
    return 2


def run_update(args: argparse.Namespace) -> int:
    import trio

    from probe.geo.db import data_dir
    from probe.geo.update import ATTRIBUTION, DEFAULT_BASE_URL, UpdateError, update

    base_url = args.base_url or DEFAULT_BASE_URL
    if not base_url.startswith(("http://", "https://")):
        return _fail(f"--base-url must be an http(s) URL, got {base_url!r}")
    dest = args.dir or data_dir()
    try:
        inputs.output_directory(dest, what="--dir", empty=False)
    except inputs.InputError as exc:
        return _fail(str(exc))
    try:
        done = trio.run(lambda: update(dest, base_url=base_url, timeout=args.timeout))
    except UpdateError as exc:
        return _fail(str(exc))
    for item in done:
        print(f"{item.kind}: {item.description} -> {item.path}")
    print(ATTRIBUTION)
    return 0


def run_lookup(args: argparse.Namespace) -> int:
    from probe.geo.db import GeoDatabaseError, GeoDatabases

    try:
        ip = str(ipaddress.ip_address(args.ip))
    except ValueError:
        return _fail(f"not an IP address: {args.ip!r}")
    try:
        for path, what in ((args.asn_db, "--asn-db"), (args.country_db, "--country-db")):
            if path is not None:
                inputs.readable_file(path, what=what)
    except inputs.InputError as exc:
        return _fail(str(exc))
    try:
        dbs = GeoDatabases.open(asn_db=args.asn_db, country_db=args.country_db)
    except GeoDatabaseError as exc:
        return _fail(str(exc))
    with dbs:
        if not dbs:
            return _fail("no database: run `probe geoip update` or pass --asn-db/--country-db")
        info = dbs.lookup(ip)
        print(f"ip: {ip}")
        print(f"asn: {'AS' + str(info.asn) if info.asn is not None else 'unknown'}")
        print(f"network_name: {info.network_name or 'unknown'}")
        print(f"cc: {info.cc or 'unknown'}")
        print(f"databases: {dbs.description()}")
    return 0
