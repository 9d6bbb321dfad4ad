"""`probe helper serve`: run a control vantage (a Web Connectivity test helper) on this host.

The server answers OONI's TH protocol (see :mod:`probe.control.server`). It is meant to be
exposed to the internet: it refuses special-purpose addresses (also after DNS and on every
redirect), limits request size, endpoints, per-client rate and requests in flight.
``--lab-allow-ranges`` is the explicit switch that lets it measure lab or loopback ranges.
``--asn-db`` (a MaxMind-format ASN database) fills the ASNs of the answer's ``ip_info`` (0
without it), which the probe's analysis compares with the ASNs of its own DNS answers.
"""

from __future__ import annotations

import argparse
import re
import ssl
import sys
from pathlib import Path
from typing import Any

from probe import inputs
from probe.commands import usage_of
from probe.commands.argtypes import count_arg

HELP = "run a control vantage (Web Connectivity test helper) that probes can query"

_LISTEN = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})\Z")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(?:/(s|sec|min|m|h|hour))?\Z")
#: a higher rate is no limit at all (and a number that large is a typo)
MAX_RATE_PER_MINUTE = 1e6
_PER_MINUTE = {None: 1.0, "s": 60.0, "sec": 60.0, "min": 1.0, "m": 1.0, "h": 1 / 60, "hour": 1 / 60}


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="helper_command", metavar="ACTION")
    serve = sub.add_parser("serve", help="serve the TH protocol over HTTP(S)", description=HELP)
    serve.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="address to bind (default 127.0.0.1:8080; [::]:PORT for IPv6)",
    )
    serve.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS: certificate")
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="serve HTTPS: private key")
    serve.add_argument(
        "--ca-file",
        type=Path,
        metavar="PEM",
        help="trust this extra CA bundle when measuring (the lab's CA)",
    )
    serve.add_argument(
        "--lab-allow-ranges",
        default="",
        metavar="CIDR,...",
        help="LAB ONLY: special-purpose ranges the helper may contact "
        "(e.g. 198.18.0.0/15); never use on a public server",
    )
    serve.add_argument(
        "--max-concurrency",
        type=count_arg(1, 100_000),
        default=32,
        metavar="N",
        help="requests measured at once; more get 503 (default 32)",
    )
    serve.add_argument(
        "--rate-limit",
        default="600/min",
        metavar="N/min",
        help="requests per client (IPv4 address, IPv6 /64); N/s, N/min or "
        "N/h; 0 disables (default 600/min: a probe at concurrency 20 asks ~5/s)",
    )
    serve.add_argument(
        "--burst",
        type=count_arg(1, 1_000_000),
        default=60,
        metavar="N",
        help="requests a quiet client may send at once before the rate applies (default 60)",
    )
    serve.add_argument(
        "--body-cap",
        type=count_arg(1024, 64 << 20),
        default=1 << 20,
        metavar="BYTES",
        help="most bytes of a target's body the helper reads (default 1048576); the worst "
        "case memory is about 96 MiB + 5 x max-concurrency x body-cap",
    )
    serve.add_argument(
        "--max-body",
        type=count_arg(256, 64 << 20),
        default=64 * 1024,
        metavar="BYTES",
        help="largest request body (default 65536)",
    )
    serve.add_argument(
        "--max-endpoints",
        type=count_arg(1, 4096),
        default=32,
        metavar="N",
        help="most ip:port items per request (default 32)",
    )
    serve.add_argument(
        "--asn-db",
        type=Path,
        metavar="PATH",
        help="MaxMind-format ASN database (GeoLite2-ASN, DB-IP asn lite) for ip_info ASNs",
    )
    serve.set_defaults(func=run)
    parser.set_defaults(func=usage_of(parser))


def parse_rate(text: str) -> float:
    """``"60/min"`` -> 60.0 requests per minute; raises ValueError."""
    match = _RATE.match(text.strip())
    if match is None:
        raise ValueError(f"bad --rate-limit {text[:40]!r} (want N/s, N/min or N/h)")
    per_minute = float(match.group(1)) * _PER_MINUTE[match.group(2)]
    if per_minute > MAX_RATE_PER_MINUTE:
        raise ValueError(f"--rate-limit must be at most {MAX_RATE_PER_MINUTE:g}/min")
    return per_minute


def build(args: argparse.Namespace, *, log: Any = None) -> tuple[Any, Any]:
    """(ControlApp, hypercorn Config) from parsed options; raises ValueError for bad ones.

    ``log`` receives one dict per request (default: a JSON line on stderr).
    """
    from probe.config import parse_ranges
    from probe.control.limits import ServerLimits
    from probe.control.measure import MeasureSettings, measure
    from probe.control.safety import AddressPolicy
    from probe.control.server import ControlApp, hypercorn_config, json_log_to_stderr
    from probe.stages.tls import make_ssl_context

    match = _LISTEN.match(args.listen)
    if match is None or not 0 <= int(match.group(1)) < 65536:
        raise ValueError(f"bad --listen {args.listen!r} (want HOST:PORT)")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    for path, what in ((args.tls_cert, "--tls-cert"), (args.tls_key, "--tls-key"),
                       (args.ca_file, "--ca-file"), (args.asn_db, "--asn-db")):  # fmt: skip
        if path is not None:
            inputs.readable_file(path, what=what)
    if args.max_concurrency < 1 or args.max_body < 256 or args.max_endpoints < 1:
        raise ValueError("--max-concurrency, --max-endpoints must be >= 1, --max-body >= 256")
    limits = ServerLimits(
        max_body=args.max_body,
        max_endpoints=args.max_endpoints,
        max_concurrency=args.max_concurrency,
        rate_per_minute=parse_rate(args.rate_limit),
        burst=float(args.burst),
        body_cap=args.body_cap,
    )
    if args.tls_cert is not None:
        _check_server_pem(args.tls_cert, args.tls_key)
    try:
        ssl_context = make_ssl_context(ca_file=args.ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"--ca-file {args.ca_file} is not a readable PEM bundle: {exc}") from None
    settings = MeasureSettings(
        policy=AddressPolicy.of(parse_ranges(args.lab_allow_ranges)),
        ssl_context=ssl_context,
        max_addresses=args.max_endpoints,
        body_cap=limits.body_cap,
    )

    databases = None
    if args.asn_db is not None:
        from probe.geo.db import GeoDatabaseError, GeoDatabases, open_reader

        try:
            databases = GeoDatabases(asn=open_reader(args.asn_db), country=None)
        except GeoDatabaseError as exc:
            raise ValueError(f"--asn-db: {exc}") from exc

    async def measure_target(target: Any) -> dict[str, Any]:
        answer = await measure(target, settings=settings)
        if databases is not None:
            fill_asns(answer, databases)
        return answer

    app = ControlApp(measure=measure_target, limits=limits, log=log or json_log_to_stderr)
    config = hypercorn_config(
        args.listen,
        tls_cert=str(args.tls_cert) if args.tls_cert else None,
        tls_key=str(args.tls_key) if args.tls_key else None,
    )
    return app, config


def _check_server_pem(cert: Path, key: Path) -> None:
    """The certificate and key load into a server context (else hypercorn fails at start)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"--tls-cert {cert} / --tls-key {key} do not load as a PEM certificate and key: {exc}"
        ) from None


def fill_asns(answer: dict[str, Any], databases: Any) -> None:
    """Set ``ip_info[ip]["asn"]`` from the ASN database (left 0 where it has no record)."""
    for ip, info in answer.get("ip_info", {}).items():
        asn = databases.lookup(ip).asn
        if asn is not None:
            info["asn"] = asn


def run(args: argparse.Namespace) -> int:
    import trio

    from probe.control.server import serve

    try:
        app, config = build(args)
    except ValueError as exc:
        print(f"probe helper: error: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, app, config)
            mib = app.limits.worst_case_memory() >> 20
            print(
                f"probe helper: serving on {' '.join(binds)} (worst case about {mib} MiB: "
                f"{app.limits.max_concurrency} requests at once x {app.limits.body_cap} bytes "
                "of body each)",
                file=sys.stderr,
                flush=True,
            )

    try:
        trio.run(main)
    except (OSError, ExceptionGroup) as exc:
        errors = exc.subgroup(OSError) if isinstance(exc, ExceptionGroup) else exc
        if errors is None:
            raise
        print(f"probe helper: error: cannot listen on {args.listen}: {errors}", file=sys.stderr)
        return 2
    return 0
