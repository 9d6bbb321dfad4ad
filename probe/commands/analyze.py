"""`probe analyze`: verdicts from recorded measurements, in two forms.

* ``probe analyze --stdin`` reads ONE measurement (JSON) on stdin and prints its verdict keys,
  computed by the engine the registry names for its ``test_name`` (web_connectivity and the
  app tests);
* ``probe analyze PATH... --output DIR`` is the researchers' batch form: a Parquet dataset
  (:func:`probe.batch.pipeline.run`), then the run's summary on stdout. When its one input is
  a collector **store** (``s3://bucket/prefix``, or a folder holding a ``raw/`` tree: what
  ``probe collector serve`` writes) the batch reads the store incrementally
  (:func:`probe.store.analyze.analyze_store`): only the parts that arrived since the last run
  into the same ``DIR``, filtered by receive date, country and test; ``DIR`` says what it covers.

Every option means something in both forms, or is refused in the form where it cannot
(one line, exit 2), never silently ignored. Paths, numbers and the measurement on stdin are
held to :mod:`probe.inputs` (files, ``--workers``, JSON depth and number limits) before anything
is read or written:

====================  ==========================================  ==========================
option                ``--stdin``                                 ``PATH...`` / ``STORE``
====================  ==========================================  ==========================
``--format``          the verdict as json / table / csv           the summary as json / table / csv
``--output``          write the verdict to FILE (else stdout)     the dataset directory (required;
                                                                  a store's: new or its own)
``--fingerprints-dir``  added to the built-in set                 the same
``--public-ranges``   ranges treated as public (not bogons)       the same
``--workers``         refused (one measurement)                   local worker processes
``--scheduler``       refused (one measurement)                   a Dask scheduler
``--since/--until``   refused                                     STORE only: receive dates
``--cc/--test``       refused                                     STORE only: country, test
``--s3-*``            refused                                     STORE only: the S3 store
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
    from probe.store.analyze import StoreRun

HELP = "compute verdicts for measurements (one on stdin, or files in batch)"
MAX_WORKERS = 256


def register(parser: argparse.ArgumentParser) -> None:
    # str, not Path: Path("s3://b/p") is "s3:/b/p"
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="JSONL(.gz) files or folders (batch), or one collector STORE: a folder with a "
        "raw/ tree or s3://BUCKET/PREFIX",
    )
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
    store = parser.add_argument_group("collector store (one STORE input)")
    store.add_argument("--since", metavar="YYYY-MM-DD", help="parts received on or after")
    store.add_argument("--until", metavar="YYYY-MM-DD", help="parts received on or before")
    store.add_argument("--cc", action="append", default=[], metavar="CC", help="country (repeat)")
    store.add_argument(
        "--test", action="append", default=[], metavar="NAME", help="test name (repeat)"
    )
    store.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint")
    store.add_argument("--s3-region", metavar="NAME", help="S3 region")
    store.add_argument(
        "--s3-anonymous", action="store_true", help="read a public bucket without credentials"
    )
    parser.set_defaults(func=run)


#: the store form's options: (attribute, flag)
_STORE_OPTIONS = (
    ("since", "--since"), ("until", "--until"), ("cc", "--cc"), ("test", "--test"),
    ("s3_endpoint", "--s3-endpoint"), ("s3_region", "--s3-region"),
    ("s3_anonymous", "--s3-anonymous"),
)  # fmt: skip


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
        store = None if args.stdin else _store_input(args.paths)
        if store is None:
            given = [flag for name, flag in _STORE_OPTIONS if getattr(args, name)]
            if given:
                raise UsageError(f"{given[0]} is for a collector store (one STORE input)")
        if args.stdin:
            return _single(args, fingerprints=fingerprints, public_ranges=ranges)
        if store is not None:
            return _store(store, args, fingerprints=fingerprints, public_ranges=ranges)
        return _batch(args, fingerprints=fingerprints, public_ranges=ranges)
    except UsageError as exc:
        return _error(str(exc))


def _store_input(paths: list[str]) -> str | None:
    """The one store among the inputs, or None; a store mixed with other inputs is refused."""
    from probe.store.listing import is_store

    stores = [p for p in paths if is_store(p)]
    if not stores:
        return None
    if len(paths) > 1:
        raise UsageError(f"a collector store ({stores[0]}) is analysed alone, not with others")
    return stores[0]


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
    from probe.batch.pipeline import run as run_batch
    from probe.batch.step import StepOptions

    out: Path | None = args.output
    if out is None:
        raise UsageError("--output DIR is required with input paths")
    paths = [Path(p) for p in args.paths]
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file or folder: {path}")
    try:
        inputs.output_directory(out, what="--output")
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    _warn_stale()
    tty = sys.stderr.isatty()
    summary = run_batch(
        paths,
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


def _warn_stale() -> None:
    """Warn (once) when the compiled analysis is older than its source."""
    from probe import native

    old = native.stale()
    if old:
        print(
            f"probe analyze: warning: compiled modules older than their source ({', '.join(old)})"
            ": results follow the old code; rebuild them with `python -m probe.native build`",
            file=sys.stderr,
        )


def _store(
    url: str,
    args: argparse.Namespace,
    *,
    fingerprints: Fingerprints,
    public_ranges: tuple[IPNetwork, ...],
) -> int:
    """A collector store, incrementally into ``--output`` (:mod:`probe.store`)."""
    from probe.batch.step import StepOptions
    from probe.collector.storage import S3Settings, StoreError
    from probe.store.analyze import analyze_store
    from probe.store.listing import StoreFilter
    from probe.store.state import StateError

    out: Path | None = args.output
    if out is None:
        raise UsageError("--output DIR is required with a store")
    filt = StoreFilter.of(
        since=_day(args.since, "--since"),
        until=_day(args.until, "--until"),
        countries=args.cc,
        tests=args.test,
    )
    try:  # its own dataset (new parts are added to it), or a new one
        inputs.output_directory(out, what="--output", empty=False)
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    _warn_stale()
    tty = sys.stderr.isatty()
    try:
        result = analyze_store(
            url,
            out,
            filt=filt,
            s3=S3Settings.from_env(
                endpoint=args.s3_endpoint, region=args.s3_region, anonymous=args.s3_anonymous
            ),
            options=StepOptions(fingerprints=fingerprints, public_ranges=public_ranges),
            workers=args.workers,
            scheduler=args.scheduler,
            progress=_progress_printer(tty=tty),
            warn=_warn,
        )
    except (StateError, StoreError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    if tty and result.summary is not None:
        print(file=sys.stderr)  # end the status line
    sys.stdout.write(_render_store(url, result, out, args.format))
    return 0


def _day(text: str | None, flag: str) -> Any:
    from datetime import date

    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} must be YYYY-MM-DD, got {text!r}") from None


#: what a store run adds to the summary, for --format csv
_STORE_FIELDS = ("store", "run", "new_files", "known_files", "covers_files",
                 "covers_measurements", "first_day", "last_day")  # fmt: skip


def _render_store(url: str, result: StoreRun, out: Path, fmt: str) -> str:
    covers = result.state.covers
    facts = {
        "store": url,
        "run": result.run,
        "new_files": result.new_files,
        "known_files": result.known_files,
        "covers_files": covers.get("files", 0),
        "covers_measurements": covers.get("measurements", 0),
        "first_day": covers.get("first_day"),
        "last_day": covers.get("last_day"),
    }
    summary = result.summary
    if fmt == "json":
        data = facts | {"covers": covers}
        if summary is not None:
            data["summary"] = json.loads(_render_summary(summary, out, "json"))
        return json.dumps(data, indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow((*_STORE_FIELDS, "output", *_CSV_FIELDS))
        cells = _summary_cells(summary) if summary is not None else [""] * len(_CSV_FIELDS)
        row = ["" if facts[k] is None else facts[k] for k in _STORE_FIELDS]
        writer.writerow((*row, str(out), *cells))
        return buf.getvalue()
    if summary is None:
        head = f"nothing new in {url} ({result.known_files} parts already analysed)\n"
    else:
        head = f"run {result.run}: {result.new_files} new parts, {result.known_files} known\n"
        head += _render_summary(summary, out, "table")
    return head + (
        f"the dataset covers {facts['covers_files']} parts, {facts['covers_measurements']} "
        f"measurements received {facts['first_day']} .. {facts['last_day']}\n"
    )


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

    if fmt == "json":
        data = asdict(summary) | {"rate": summary.rate, "output": str(out)}
        return json.dumps(data, indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("output", *_CSV_FIELDS))
        writer.writerow((str(out), *_summary_cells(summary)))
        return buf.getvalue()
    return format_summary(summary, out) + "\n"


def _summary_cells(summary: Summary) -> list[Any]:
    data = asdict(summary) | {"rate": summary.rate}
    return [";".join(v) if isinstance(v := data[k], list) else v for k in _CSV_FIELDS]
