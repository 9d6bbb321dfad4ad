"""What the volunteer sees: a live bar on a terminal, plain log lines otherwise, a summary.

The bar shows done/total, blocked so far, elapsed time and ETA. Without a terminal (CI, a pipe,
a log file) each finished target is one line, so nothing depends on cursor control.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from probe.runner import Stats
from probe.summary import SummaryRow
from probe.targets import BadLine


class LiveSink:
    """A rich progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("[bold]measuring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("blocked: [red]{task.fields[blocked]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task: TaskID | None = None

    def bad_line(self, bad: BadLine) -> None:
        self.progress.console.print(f"[yellow]skipped[/] {bad}")

    def started(self, total: int | None) -> None:
        self.progress.start()
        self.task = self.progress.add_task("targets", total=total, blocked=0)

    def finished(self, row: SummaryRow, stats: Stats) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=stats.done, blocked=stats.blocked)

    def interrupted(self) -> None:
        self.progress.console.print(
            "[yellow]interrupted:[/] finishing the targets in flight (Ctrl-C again to abort)"
        )

    def close(self) -> None:
        self.progress.stop()


class LogSink:
    """One plain line per finished target."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.total: int | None = None
        self.t0 = time.monotonic()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def bad_line(self, bad: BadLine) -> None:
        self._print(f"skipped {bad}")

    def started(self, total: int | None) -> None:
        self.total = total
        self.t0 = time.monotonic()

    def finished(self, row: SummaryRow, stats: Stats) -> None:
        total = "?" if self.total is None else str(self.total)
        elapsed = time.monotonic() - self.t0
        detail = f" [{row.outcome}]" if row.outcome else ""
        self._print(
            f"[{stats.done}/{total}] {elapsed:7.1f}s blocked={stats.blocked} "
            f"{row.url} {row.verdict}{detail}"
        )

    def interrupted(self) -> None:
        self._print("interrupted: finishing the targets in flight (Ctrl-C again to abort)")

    def close(self) -> None:
        pass


def print_summary(stats: Stats, output: str, *, stream: TextIO = sys.stdout) -> None:
    console = Console(file=stream, width=120)
    if stats.rows:
        table = Table(title="Targets not accessible")
        table.add_column("target", overflow="fold")
        table.add_column("failed at")
        table.add_column("verdict")
        table.add_column("signature")
        for row in stats.rows:
            table.add_row(row.url, row.stage or "-", row.verdict, row.outcome or "-")
        console.print(table)
        hidden = stats.done - stats.verdicts.get("accessible", 0) - len(stats.rows)
        if hidden > 0:
            console.print(f"... and {hidden} more (see the output file)")
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(stats.verdicts.items())) or "none"
    console.print(f"measured {stats.done} targets ({counts})")
    if stats.bad_lines:
        console.print(f"skipped {stats.bad_lines} invalid input lines (listed above)")
    if stats.skipped_resume:
        console.print(f"resumed: {stats.skipped_resume} targets were already in the file")
    if stats.interrupted:
        console.print("interrupted before the end: rerun with --resume to finish")
    console.print(f"written: {output}")
