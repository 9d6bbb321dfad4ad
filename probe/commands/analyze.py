"""`probe analyze`: verdicts from recorded measurements.

``probe analyze --stdin`` reads ONE measurement (JSON) on stdin and prints its verdict keys
(``--format json`` or ``table``). ``probe analyze PATH... --output DIR`` is the researchers'
batch form, run by :func:`probe.batch.pipeline.run_cli`.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path

from probe import inputs

HELP = "compute verdicts for measurements (one on stdin, or files in batch)"
MAX_WORKERS = 256


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="JSONL(.gz) files (batch mode)")
    parser.add_argument("--stdin", action="store_true", help="read one measurement on stdin")
    parser.add_argument("--format", choices=("json", "table", "csv"), default="json")
    parser.add_argument("--output", type=Path, default=None, help="batch output directory")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler ADDRESS (batch)")
    parser.add_argument(
        "--workers",
        type=inputs.count_arg(0, MAX_WORKERS),
        default=None,
        help="local worker processes",
    )
    parser.add_argument(
        "--fingerprints-dir",
        type=Path,
        default=None,
        help="directory from `probe fingerprints update` (added to the built-in set)",
    )
    parser.add_argument(
        "--public-ranges",
        default="",
        help="comma-separated CIDRs to treat as public (not bogons), e.g. the lab's",
    )
    parser.set_defaults(func=run)


def _error(msg: str) -> int:
    print(f"probe analyze: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.paths:
        try:
            _check_batch(args)
        except inputs.InputError as exc:
            return _error(str(exc))
        from probe.batch.pipeline import run_cli

        code: int = run_cli(args)
        return code
    if not args.stdin:
        return _error("give measurement files, or --stdin")
    if args.format == "csv":
        return _error("--format csv is for batch mode; use json or table with --stdin")
    from probe.analysis import analyze
    from probe.analysis.fingerprints import builtin, load_directory

    try:
        ranges = tuple(
            ipaddress.ip_network(r.strip(), strict=False)
            for r in args.public_ranges.split(",")
            if r.strip()
        )
    except ValueError as exc:
        return _error(f"--public-ranges: {exc}")
    fps = builtin()
    if args.fingerprints_dir is not None:
        try:
            inputs.directory(args.fingerprints_dir, what="--fingerprints-dir")
        except inputs.InputError as exc:
            return _error(str(exc))
        fps = fps.merged(load_directory(args.fingerprints_dir))
    try:
        measurement = inputs.json_document(
            sys.stdin.buffer.read(inputs.MAX_JSON_BYTES + 1), what="stdin"
        )
    except inputs.InputError as exc:
        return _error(str(exc))
    if not isinstance(measurement, dict):
        return _error("stdin is not a JSON object")
    verdict = analyze(measurement, fingerprints=fps, public_ranges=ranges)
    if args.format == "json":
        print(json.dumps(verdict, ensure_ascii=False))
    else:
        width = max(len(k) for k in verdict)
        for key, value in verdict.items():
            print(f"{key.ljust(width)}  {json.dumps(value, ensure_ascii=False)}")
    return 0


def _check_batch(args: argparse.Namespace) -> None:
    """The batch form's paths and output, before anything is read."""
    for path in args.paths:
        if not path.exists():
            raise inputs.InputError(f"no such file or folder: {path}")
    if args.output is not None:
        inputs.output_directory(args.output, what="--output")
    if args.fingerprints_dir is not None:
        inputs.directory(args.fingerprints_dir, what="--fingerprints-dir")
