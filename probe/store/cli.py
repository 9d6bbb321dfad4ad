"""The command-line face of store analysis, for ``probe analyze STORE --output DIR``.

``probe analyze`` registers :func:`add_arguments` and, when its one input is a store
(:func:`is_store`: ``s3://...`` or a folder with a ``raw/`` tree), hands over to
:func:`run_cli`. Exit status: 0, or 2 with one line for a usage error (bad dates, another
store's dataset in ``--output``, missing S3 credentials).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("collector store (STORE is a folder or s3://bucket/prefix)")
    group.add_argument("--since", metavar="YYYY-MM-DD", help="parts received on or after")
    group.add_argument("--until", metavar="YYYY-MM-DD", help="parts received on or before")
    group.add_argument("--cc", action="append", default=[], metavar="CC", help="country (repeat)")
    group.add_argument(
        "--test", action="append", default=[], metavar="NAME", help="test name (repeat)"
    )
    group.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint")
    group.add_argument("--s3-region", metavar="NAME", help="S3 region")
    group.add_argument(
        "--s3-anonymous", action="store_true", help="read a public bucket without credentials"
    )


def is_store(raw: str) -> bool:
    """A store URL, or a local folder that holds a ``raw/`` tree of parts."""
    return raw.startswith("s3://") or (Path(raw) / "raw").is_dir()


def _day(text: str | None, flag: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag} must be YYYY-MM-DD, got {text!r}") from None


def run_cli(store_url: str, args: argparse.Namespace) -> int:
    """Analyse ``store_url`` into ``args.output`` incrementally; prints what it did."""
    from probe.batch.pipeline import _load_fingerprints, format_summary
    from probe.batch.step import StepOptions
    from probe.collector.storage import S3Settings, StoreError
    from probe.store.analyze import analyze_store
    from probe.store.listing import StoreFilter
    from probe.store.state import StateError

    def fail(message: str) -> int:
        print(f"probe analyze: error: {message}", file=sys.stderr)
        return 2

    if not getattr(args, "output", None):
        return fail("--output DIR is required with a store")
    try:
        filt = StoreFilter.of(
            since=_day(args.since, "--since"),
            until=_day(args.until, "--until"),
            countries=args.cc,
            tests=args.test,
        )
        fingerprints = _load_fingerprints(getattr(args, "fingerprints_dir", None))
        result = analyze_store(
            store_url,
            Path(args.output),
            filt=filt,
            s3=S3Settings.from_env(
                endpoint=args.s3_endpoint, region=args.s3_region, anonymous=args.s3_anonymous
            ),
            options=StepOptions(fingerprints=fingerprints),
            workers=getattr(args, "workers", None),
            scheduler=getattr(args, "scheduler", None),
        )
    except (StateError, StoreError, ValueError, OSError) as exc:
        return fail(str(exc))
    covers = result.state.covers
    if result.summary is None:
        print(f"nothing new in {store_url} ({result.known_files} parts already analysed)")
    else:
        print(f"run {result.run}: {result.new_files} new parts, {result.known_files} known")
        print(format_summary(result.summary, Path(args.output)))
    print(
        f"the dataset covers {covers.get('files', 0)} parts, {covers.get('measurements', 0)} "
        f"measurements received {covers.get('first_day')} .. {covers.get('last_day')}"
    )
    return 0
