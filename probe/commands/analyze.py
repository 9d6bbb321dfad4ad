"""`probe analyze`: verdicts from recorded measurements, in two forms.

* ``probe analyze --stdin`` reads ONE measurement (JSON) on stdin and prints its verdict keys,
  computed by the engine the registry names for its ``test_name`` (web_connectivity and the
  app tests);
* ``probe analyze PATH... --output DIR`` is the researchers' batch form: a Parquet dataset
  (:func:`probe.batch.pipeline.run`), then the run's summary on stdout.

Every option means something in both forms, or is refused in the form where it cannot
(one line, exit 2), never silently ignored. Paths, numbers and the measurement on stdin are
held to :mod:`probe.inputs` (files, ``--workers``, JSON depth and number limits) before anything
is read or written:

====================  ==========================================  ==========================
option                ``--stdin``                                 ``PATH...``
====================  ==========================================  ==========================
``--format``          the verdict as json / table / csv           the summary as json / table / csv
``--output``          write the verdict to FILE (else stdout)     the dataset directory (required)
``--fingerprints-dir``  added to the built-in set                 the same
``--public-ranges``   ranges treated as public (not bogons)       the same
``--workers``         refused (one measurement)                   local worker processes
``--scheduler``       refused (one measurement)                   a Dask scheduler
====================  ==========================================  ==========================
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe import inputs
from probe.commands.argtypes import count_arg

if TYPE_CHECKING:
    from probe.analysis.fingerprints import Fingerprints
    from probe.batch.pipeline import Summary
    from probe.config import IPNetwork

HELP = "compute verdicts for measurements (one on stdin, or files in batch)"
MAX_WORKERS = 256


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="JSONL(.gz) files (batch mode)")
    parser.add_argument("--stdin", action="store_true", help="read one measurement on stdin")
    parser.add_argument(
        "--format",
        choices=("json", "table", "csv"),
        default="json",
        help="how to print the verdict (--stdin) or the run's summary (batch); default json",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="batch: the dataset directory (required); --stdin: write the verdict to this file",
    )
    parser.add_argument("--scheduler", default=None, help="Dask scheduler ADDRESS (batch)")
    parser.add_argument(
        "--workers",
        type=count_arg(0, MAX_WORKERS),
        default=None,
        help="local worker processes (batch)",
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


class UsageError(Exception):
    """A bad option or input: one line, exit 2."""


def _error(msg: str) -> int:
    print(f"probe analyze: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        if args.paths and args.stdin:
            raise UsageError("give measurement files or --stdin, not both")
        if not args.paths and not args.stdin:
            raise UsageError("give measurement files, or --stdin")
        ranges = _public_ranges(args.public_ranges)
        fingerprints = _fingerprints(args.fingerprints_dir)
        if args.stdin:
            return _single(args, fingerprints=fingerprints, public_ranges=ranges)
        return _batch(args, fingerprints=fingerprints, public_ranges=ranges)
    except UsageError as exc:
        return _error(str(exc))


def _public_ranges(text: str) -> tuple[IPNetwork, ...]:
    from probe.config import parse_ranges

    try:
        return parse_ranges(text)
    except ValueError as exc:
        raise UsageError(f"--public-ranges: {exc}") from exc


def _fingerprints(directory: Path | None) -> Fingerprints:
    """Our bundled fingerprints, merged with a directory of OONI / Censored Planet files: the
    same set ``probe run`` uses, so verdicts agree."""
    from probe.analysis.fingerprints import builtin, load_directory

    fps = builtin()
    if directory is None:
        return fps
    try:
        inputs.directory(directory, what="--fingerprints-dir")
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    try:
        return fps.merged(load_directory(directory))
    except (ImportError, AttributeError, OSError, ValueError) as exc:
        raise UsageError(f"cannot load fingerprints: {exc}") from exc


# --- one measurement on stdin -------------------------------------------------------------------


def _single(
    args: argparse.Namespace, *, fingerprints: Fingerprints, public_ranges: tuple[IPNetwork, ...]
) -> int:
    from probe import registry

    for name in ("workers", "scheduler"):
        if getattr(args, name) is not None:
            raise UsageError(f"--{name} is for input paths (batch); --stdin analyses one")
    try:
        if args.output is not None:
            inputs.output_file(args.output, what="--output")
        measurement = inputs.json_document(
            sys.stdin.buffer.read(inputs.MAX_JSON_BYTES + 1), what="stdin"
        )
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    if not isinstance(measurement, dict):
        raise UsageError("stdin is not a JSON object")
    test = registry.lookup(measurement.get("test_name"))
    if test is None:
        known = ", ".join(t.name for t in registry.TESTS)
        raise UsageError(f"no verdict for test_name {measurement.get('test_name')!r} ({known})")
    verdict = test.analyze(measurement, fingerprints=fingerprints, public_ranges=public_ranges)
    text = _render(verdict, args.format)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    return 0


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _render(keys: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(keys, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(keys)
        writer.writerow(_cell(v) for v in keys.values())
        return out.getvalue()
    width = max(len(k) for k in keys)
    lines = [f"{key.ljust(width)}  {json.dumps(v, ensure_ascii=False)}" for key, v in keys.items()]
    return "\n".join(lines) + "\n"


# --- the batch ----------------------------------------------------------------------------------


def _batch(
    args: argparse.Namespace, *, fingerprints: Fingerprints, public_ranges: tuple[IPNetwork, ...]
) -> int:
    from probe import native
    from probe.batch.pipeline import run as run_batch
    from probe.batch.step import StepOptions

    out: Path | None = args.output
    if out is None:
        raise UsageError("--output DIR is required with input paths")
    for path in args.paths:
        if not path.exists():
            raise UsageError(f"no such file or folder: {path}")
    try:
        inputs.output_directory(out, what="--output")
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    old = native.stale()
    if old:
        print(
            f"probe analyze: warning: compiled modules older than their source ({', '.join(old)})"
            ": results follow the old code; rebuild them with `python -m probe.native build`",
            file=sys.stderr,
        )
    tty = sys.stderr.isatty()
    summary = run_batch(
        args.paths,
        out,
        options=StepOptions(fingerprints=fingerprints, public_ranges=public_ranges),
        workers=args.workers,
        scheduler=args.scheduler,
        progress=_progress_printer(tty=tty),
        progress_every=1.0 if tty else 30.0,
        warn=_warn,
    )
    if tty:
        print(file=sys.stderr)  # end the status line
    sys.stdout.write(_render_summary(summary, out, args.format))
    return 0


def _warn(line: str) -> None:
    print(f"probe analyze: warning: {line}", file=sys.stderr, flush=True)


def _progress_printer(*, tty: bool) -> Any:
    from probe.batch.pipeline import progress_line

    def show(summary: Summary, elapsed: float) -> None:
        line = progress_line(summary, elapsed)
        if tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


#: the summary's scalar fields, in this order, for --format csv
_CSV_FIELDS = (
    "files", "lines", "measurements", "observations", "malformed_count", "rules_versions",
    "schema_version", "executor", "compiled", "worker_peak_rss_kb", "step_cpu_seconds",
    "main_cpu_seconds", "seconds", "rate",
)  # fmt: skip


def _render_summary(summary: Summary, out: Path, fmt: str) -> str:
    from probe.batch.pipeline import format_summary

    data = asdict(summary) | {"rate": summary.rate, "output": str(out)}
    if fmt == "json":
        return json.dumps(data, indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("output", *_CSV_FIELDS))
        row = [";".join(v) if isinstance(v := data[k], list) else v for k in _CSV_FIELDS]
        writer.writerow((str(out), *row))
        return buf.getvalue()
    return format_summary(summary, out) + "\n"
