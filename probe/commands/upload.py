"""`probe upload`: send the measurements waiting in the outbox (and add results files to it).

``probe run`` uploads each measurement as it is written; what could not reach the collector
(unreachable, blocked) waits in the outbox. ``probe upload`` sends it, with a progress bar on a
terminal; ``probe upload results/2026-11-29/*.jsonl`` first adds those files' measurements
(lines already added are skipped, so it can be run again safely). The collector, proxy and
consent come from the config file (``probe onboard``); ``--collector``/``--proxy`` override
them for this run. ``--status`` only counts. Exit status: 0 when nothing waits any more, 1 when
measurements still wait (the reason is printed), 2 for a usage error or missing consent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from probe.configfile import config_path

if TYPE_CHECKING:
    from probe.consent import Publishing
    from probe.upload.outbox import Outbox
    from probe.upload.policy import UploadPolicy

HELP = "send the measurements waiting to be uploaded (and add results files to them)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE.jsonl", help="results files to add first"
    )
    parser.add_argument("--status", action="store_true", help="print the counts, send nothing")
    parser.add_argument(
        "--rejected", action="store_true", help="list the measurements the collector refused"
    )
    parser.add_argument("--collector", metavar="URL", help="collector (default: config file)")
    parser.add_argument("--proxy", metavar="URL", help="proxy (default: config file)")
    parser.add_argument(
        "--ca-file", type=Path, metavar="PEM", help="trust this extra CA (the lab's) too"
    )
    parser.add_argument("--outbox", type=Path, metavar="FILE", help="the outbox database")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"config file (default {config_path()})"
    )
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"probe upload: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from probe import consent
    from probe.configfile import ConfigFileError
    from probe.upload.outbox import NotAMeasurement, Outbox, default_path

    outbox_path: Path = args.outbox or default_path()
    if args.status or args.rejected:
        with Outbox(outbox_path) as outbox:
            if args.rejected:
                for raw, error in outbox.rejected_lines():
                    print(f"{error}\t{raw[:120]!r}")
            status = outbox.status()
        print(
            f"waiting {status.waiting}, uploaded {status.uploaded}, rejected {status.rejected}"
            + (f" (last error: {status.last_error})" if status.last_error else "")
        )
        return 0
    path = args.config or config_path()
    refused = consent.require(path, command="probe upload")
    if refused is not None:
        return refused
    try:
        from probe.configfile import load
        from probe.upload.policy import policy_from_config

        policy = policy_from_config(load(path))
        _, publishing = consent.load(path)
        if args.collector:
            publishing = replace(
                publishing, collector_url=consent.check_collector_url(args.collector)
            )
        if args.proxy:
            publishing = replace(publishing, proxy=consent.check_proxy_url(args.proxy))
    except (ConfigFileError, ValueError) as exc:
        return _fail(str(exc))
    if not publishing.upload:
        return _fail("uploading is off: `probe onboard --upload` turns it on")
    if publishing.collector_url is None:
        return _fail("no collector: `probe onboard --collector URL` (or --collector here)")
    if args.ca_file is not None and not args.ca_file.is_file():
        return _fail(f"no such file: {args.ca_file}")
    added = 0
    with Outbox(outbox_path) as outbox:
        for file in args.files:
            try:
                added += _add_file(outbox, file)
            except OSError as exc:
                return _fail(f"cannot read {file}: {exc.strerror or exc}")
            except NotAMeasurement as exc:
                return _fail(f"{file}: {exc}")
    if args.files:
        print(f"probe upload: added {added} measurements", file=sys.stderr)
    return _send(outbox_path, publishing, policy, args)


def _add_file(outbox: Outbox, file: Path, batch: int = 500) -> int:
    from probe.upload.outbox import NotAMeasurement, template_of

    added = 0
    lines: list[bytes] = []
    with file.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            if not raw.endswith(b"\n"):
                continue  # a torn last line (the run was killed while writing it)
            try:
                template_of(raw)
            except NotAMeasurement as exc:
                raise NotAMeasurement(f"line {number}: {exc}") from None
            lines.append(raw)
            if len(lines) >= batch:
                added += outbox.add(lines)
                lines = []
    return added + (outbox.add(lines) if lines else 0)


def _send(
    outbox_path: Path, publishing: Publishing, policy: UploadPolicy, args: argparse.Namespace
) -> int:
    import trio

    from probe.upload.client import CollectorClient
    from probe.upload.outbox import Outbox, sender_lock
    from probe.upload.sender import DrainResult, Sender, summary_line

    with Outbox(outbox_path) as outbox:
        total = outbox.status().waiting
    show = sys.stderr.isatty() and not args.no_progress and total > 0

    collector = publishing.collector_url
    assert collector is not None

    async def main() -> DrainResult:
        async with CollectorClient(
            collector,
            policy=policy,
            proxy=publishing.proxy,
            ca_file=args.ca_file,
        ) as client:
            if not show:
                return await Sender(outbox_path, client, policy=policy).drain()
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("uploading", total=total)

                def advance(result: DrainResult) -> None:
                    bar.update(task, completed=result.uploaded + result.rejected)

                sender = Sender(outbox_path, client, policy=policy, progress=advance)
                return await sender.drain()

    with sender_lock(outbox_path) as sending:
        if not sending:
            print("probe upload: another process is uploading; nothing to do", file=sys.stderr)
            return 0
        try:
            result = trio.run(main)
        except KeyboardInterrupt:
            with Outbox(outbox_path) as outbox:
                print(f"probe upload: interrupted; {summary_line(None, outbox.status())}")
            return 130
    with Outbox(outbox_path) as outbox:
        status = outbox.status()
    print(f"probe upload: {summary_line(result, status)}")
    return 0 if status.waiting == 0 else 1
