"""`probe collector serve`: an OONI-compatible collector that files measurements in a store.

Probes (ours, and OONI's: it speaks ooni/spec bk-003) open reports and submit measurements; the
collector answers each one with its ``measurement_uid`` once it is durable in the journal, then
rolls the journal into ``raw/YYYYMMDD/HH/CC/testname/*.jsonl.gz`` parts (OONI's raw-data
bucket layout) in a local folder (the default, nothing to install) or an S3 bucket
(``--store s3://bucket/prefix``, credentials from ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``, ``--s3-endpoint`` for any S3-compatible store). See docs/collector.md.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

from probe import inputs
from probe.commands import usage_of
from probe.commands.argtypes import argtype, count_arg, seconds_arg
from probe.configfile import data_dir

HELP = "run an OONI-compatible collector that probes upload measurements to"

DEFAULT_LISTEN = "127.0.0.1:8090"
_LISTEN = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})\Z")


#: --dedup-days: more than 0, at most ten years
_days = argtype(
    lambda text: inputs.number(
        text, name="value", minimum=0.0, maximum=3650.0, exclusive_minimum=True
    ),
    "days",
)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="collector_command", metavar="ACTION")
    serve = sub.add_parser(
        "serve", help="serve the collector protocol over HTTP(S)", description=HELP
    )
    serve.add_argument(
        "--listen",
        action="append",
        metavar="HOST:PORT",
        help=f"address to bind, repeatable (default {DEFAULT_LISTEN}; [::]:PORT for IPv6)",
    )
    serve.add_argument(
        "--store",
        default=str(data_dir() / "collector" / "store"),
        metavar="DIR|s3://BUCKET/PREFIX",
        help="where the .jsonl.gz parts go (default: %(default)s)",
    )
    serve.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help="the write-ahead journal (SQLite; default DIR/.collector/journal.sqlite3 for a "
        "local store, else under the data dir); keep it on a local disk",
    )
    serve.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS: certificate")
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="serve HTTPS: private key")
    serve.add_argument(
        "--collector-id",
        type=count_arg(0, 9999),
        default=1,
        metavar="N",
        help="this collector's number in part names (n<N>); unique per collector sharing a "
        "store (default 1)",
    )
    serve.add_argument(
        "--roll-size",
        type=count_arg(1024, 1 << 40),
        default=64 << 20,
        metavar="BYTES",
        help="roll the journal into parts once it holds this much (default 64 MiB)",
    )
    serve.add_argument(
        "--roll-interval",
        type=seconds_arg(),
        default=300.0,
        metavar="SECONDS",
        help="... or once its oldest measurement is this old (default 300)",
    )
    serve.add_argument(
        "--dedup-days",
        type=_days,
        default=30.0,
        metavar="DAYS",
        help="how long a measurement is remembered to refuse its duplicates (default 30)",
    )
    serve.add_argument(
        "--max-body",
        type=count_arg(4096, 1 << 31),
        default=8 << 20,
        metavar="BYTES",
        help="largest submission (default 8 MiB)",
    )
    serve.add_argument(
        "--max-concurrency",
        type=count_arg(1, 100_000),
        default=256,
        metavar="N",
        help="requests handled at once; more get 503 (default 256)",
    )
    serve.add_argument(
        "--rate-limit",
        default="3000/min",
        metavar="N/min",
        help="requests per client (IPv4 address, IPv6 /64); N/s, N/min or N/h; 0 disables. "
        "Volunteers behind one Tor exit or proxy share it (default 3000/min)",
    )
    serve.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="http(s)://HOST:PORT of an S3-compatible store (default: AWS)",
    )
    serve.add_argument("--s3-region", metavar="NAME", help="S3 region (default us-east-1)")
    serve.add_argument("--quiet", action="store_true", help="no per-request log lines")
    serve.set_defaults(func=run)
    parser.set_defaults(func=usage_of(parser))


def build(args: argparse.Namespace, *, log: Any = None) -> tuple[Any, Any]:
    """(CollectorSettings, hypercorn Config) from parsed options; ValueError for bad ones."""
    from probe.collector.app import CollectorLimits
    from probe.collector.roller import RollPolicy
    from probe.collector.service import CollectorSettings
    from probe.collector.storage import LocalStore, S3Settings, StoreError, open_store
    from probe.commands.helper import parse_rate
    from probe.control.server import hypercorn_config

    listen: list[str] = args.listen or [DEFAULT_LISTEN]
    for address in listen:
        match = _LISTEN.match(address)
        if match is None or not 0 <= int(match.group(1)) < 65536:
            raise ValueError(f"bad --listen {address!r} (want HOST:PORT)")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
    try:
        store = open_store(
            args.store, s3=S3Settings.from_env(endpoint=args.s3_endpoint, region=args.s3_region)
        )
    except StoreError as exc:
        raise ValueError(str(exc)) from exc
    journal = args.journal
    if journal is None:
        if isinstance(store, LocalStore):
            journal = store.root / ".collector" / "journal.sqlite3"
        else:
            journal = data_dir() / "collector" / "journal.sqlite3"
    settings = CollectorSettings(
        store=store,
        journal=journal,
        collector_id=args.collector_id,
        policy=RollPolicy(
            max_bytes=args.roll_size,
            max_age=args.roll_interval,
            dedup_seconds=args.dedup_days * 86400,
        ),
        limits=CollectorLimits(
            max_body=args.max_body,
            max_concurrency=args.max_concurrency,
            rate_per_minute=parse_rate(args.rate_limit),
        ),
    )
    config = hypercorn_config(
        listen[0],
        tls_cert=str(args.tls_cert) if args.tls_cert else None,
        tls_key=str(args.tls_key) if args.tls_key else None,
    )
    config.bind = listen
    config.h11_max_incomplete_size = 64 * 1024
    return settings, config


def run(args: argparse.Namespace) -> int:
    import trio

    try:
        settings, config = build(args)
    except ValueError as exc:
        print(f"probe collector: error: {exc}", file=sys.stderr)
        return 2
    failure: OSError | None = None
    try:
        trio.run(_serve, settings, config, args.quiet)
    except* OSError as group:  # cannot listen, cannot open the journal
        failure = group.exceptions[0]  # type: ignore[assignment]
    if failure is not None:
        print(f"probe collector: error: {failure}", file=sys.stderr)
        return 2
    print("probe collector: stopped", file=sys.stderr)
    return 0


async def _serve(settings: Any, config: Any, quiet: bool) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully (the journal is rolled)."""
    import trio

    from probe.collector.service import run_collector
    from probe.control.server import json_log_to_stderr

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(
                partial(
                    run_collector,
                    settings,
                    config,
                    log=None if quiet else json_log_to_stderr,
                    events=json_log_to_stderr,  # rolls and store failures, even when quiet
                )
            )
            print(
                f"probe collector: serving on {' '.join(running.urls)}; store "
                f"{settings.store.url}; journal {settings.journal}",
                file=sys.stderr,
                flush=True,
            )
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
