"""`probe report DIR`: HTML report, or one named query, over a `probe analyze` dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from probe import inputs

HELP = "report on a batch dataset: a self-contained HTML file, or a query as table/CSV/JSON"

_QUERY_NAMES = (
    "blocking-by-day",
    "techniques",
    "first-last",
    "counts",
    "stages",
    "blocking-over-time",
    "verdict-changes",
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DIR", help="output folder of `probe analyze --output`")
    parser.add_argument("--html", metavar="FILE", help="write the HTML report to FILE")
    parser.add_argument("--title", default="Censorship measurements", help="report title")
    parser.add_argument("--query", choices=_QUERY_NAMES, help="print one query instead")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--cc", help="only this country (e.g. RU)")
    parser.add_argument("--asn", help="only this network (e.g. AS12389)")
    parser.add_argument("--target", help="only targets containing this text")
    parser.add_argument("--since", type=_date, metavar="YYYY-MM-DD")
    parser.add_argument("--until", type=_date, metavar="YYYY-MM-DD")
    parser.set_defaults(func=run)


def _date(text: str) -> str:
    """A ``YYYY-MM-DD`` day, for argparse (one-line error otherwise)."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


def _bad_date(text: str) -> str:
    raise argparse.ArgumentTypeError(f"want a day as YYYY-MM-DD, got {text[:40]!r}")


def _error(message: str) -> int:
    print(f"probe report: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import duckdb

    from probe.batch.queries import Filters, open_dataset, render, run_query
    from probe.batch.report import build_report

    if not args.html and not args.query:
        return _error("give --html FILE or --query NAME")
    try:
        inputs.directory(Path(args.dataset), what="dataset")
        if args.html:
            inputs.output_file(Path(args.html), what="--html")
    except inputs.InputError as exc:
        return _error(str(exc))
    try:
        con = open_dataset(Path(args.dataset))
    except FileNotFoundError as exc:
        return _error(str(exc))
    filters = Filters(args.cc, args.asn, args.target, args.since, args.until)
    try:
        if args.query:
            columns, rows = run_query(con, args.query, filters)
            print(render(columns, rows, args.format))
        if args.html:
            Path(args.html).write_text(build_report(con, title=args.title, filters=filters))
            print(f"wrote {args.html}", file=sys.stderr)
    except duckdb.Error as exc:
        return _error(f"query failed: {str(exc).splitlines()[0]}")
    finally:
        con.close()
    return 0
