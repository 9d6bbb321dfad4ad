"""Run many targets: bounded concurrency, one writer task, resume, clean Ctrl-C.

- Input is streamed: a producer takes one target at a time and starts its task only when one of
  ``concurrency`` slots is free, so memory does not grow with the list.
- Each target runs under its own hard deadline (inside :func:`probe.experiment.measure_web`);
  any exception becomes a recorded failure of that target, never the end of the run.
- Finished measurements go through a channel to a single writer task that appends whole lines
  (:class:`probe.writer.LineWriter`); nothing is kept after it is written (only counters and a
  bounded list of rows for the final summary). Each whole line is then handed to ``written``
  (the upload's outbox): only lines that are in the file ever leave the machine.
- A write error (a full disk, ``/dev/full``) stops the run at once: the writer has cut the file
  back to its last whole line, the targets in flight are cancelled, and :attr:`Stats.write_error`
  says how many measurements are safe; the command prints that in one line.
- The first Ctrl-C stops starting new targets and lets the ones in flight finish; a second one
  cancels them. Either way every line in the file is whole, and ``--resume`` picks up from it.
- ``measure`` receives the :class:`~probe.targets.Target`, whose ``notes`` (the URL as given,
  removed credentials) belong in the measurement before it is published.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import trio

from probe import registry
from probe.summary import SummaryRow as SummaryRow  # re-exported: the Sink protocol uses it
from probe.summary import summary_row, target_label
from probe.targets import BadLine, Target
from probe.writer import LineWriter, WriteError, read_resume_state

#: how many non-accessible targets the final summary lists by name
SUMMARY_ROWS = 50


class Sink(Protocol):
    """Where progress goes: a live bar on a terminal, log lines elsewhere."""

    def bad_line(self, bad: BadLine) -> None: ...
    def started(self, total: int | None) -> None: ...
    def finished(self, row: SummaryRow, stats: Stats) -> None: ...
    def interrupted(self) -> None: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class Stats:
    done: int = 0
    blocked: int = 0
    bad_lines: int = 0
    skipped_resume: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    rows: list[SummaryRow] = field(default_factory=list)
    interrupted: bool = False
    #: set when a line could not be written: the run stopped there
    write_error: WriteError | None = None


def read_done_inputs(path: Path) -> set[str]:
    """Inputs already measured in a previous (possibly interrupted) output file."""
    return read_resume_state(path).done


def summarize(msmt: dict[str, Any]) -> SummaryRow:
    """The summary line of a finished measurement, from its test's verdict (the registry)."""
    test = registry.lookup(msmt.get("test_name"))
    tk = msmt.get("test_keys")
    if test is None or not isinstance(tk, dict):
        return SummaryRow(url=target_label(msmt), stage="", verdict="undetermined", outcome="")
    return summary_row(msmt, test.verdict(tk))


async def run_targets(
    items: Iterable[Target | BadLine],
    *,
    measure: Callable[[Target, Callable[[], None]], Awaitable[dict[str, Any]]],
    output: Path,
    concurrency: int,
    sink: Sink,
    total: int | None = None,
    done_inputs: set[str] | None = None,
    on_error: Callable[[Target, Exception], dict[str, Any]] | None = None,
    encode: Callable[[dict[str, Any]], bytes] | None = None,
    written: Callable[[bytes], Awaitable[None]] | None = None,
) -> Stats:
    """Measure every target of ``items`` and append one JSON line per target to ``output``.

    ``measure(target, release)`` is an async function returning the final measurement dict;
    it may call ``release()`` once its active work is done to free its slot early.
    ``on_error(target, exc)`` is the measurement of a target whose ``measure`` raised. ``encode``
    turns a measurement into its line (default: orjson plus a newline). ``written(line)``
    receives each line's exact bytes once they are written whole (the upload's outbox,
    :mod:`probe.upload.live`); a line the writer could not write is never handed on.
    """
    stats = Stats()
    done_inputs = done_inputs or set()
    send, receive = trio.open_memory_channel[dict[str, Any]](concurrency)
    limiter = trio.CapacityLimiter(concurrency)
    stop_starting = trio.Event()
    sink.started(total)

    async def worker(target: Target, send: trio.MemorySendChannel[dict[str, Any]]) -> None:
        url = target.url
        released = False

        def release() -> None:
            # the slot is for active network work: a measurement that only waits for late
            # DNS duplicates on its open UDP socket gives its slot to the next target
            nonlocal released
            if not released:
                released = True
                limiter.release_on_behalf_of(url)

        async with send:
            try:
                msmt = await measure(target, release)
            except Exception as exc:  # never lose a target, never stop the run
                msmt = on_error(target, exc) if on_error else _error_line(url, exc)
            finally:
                release()
            await send.send(msmt)

    async def producer(send: trio.MemorySendChannel[dict[str, Any]]) -> None:
        async with send, trio.open_nursery() as workers:
            for item in _dedup(items):
                if stop_starting.is_set():
                    break
                if isinstance(item, BadLine):
                    stats.bad_lines += 1
                    sink.bad_line(item)
                    continue
                if item.url in done_inputs:
                    stats.skipped_resume += 1
                    continue
                await limiter.acquire_on_behalf_of(item.url)
                if stop_starting.is_set():
                    limiter.release_on_behalf_of(item.url)
                    break
                workers.start_soon(worker, item, send.clone())

    to_line = encode or _encode

    async def writer(
        receive: trio.MemoryReceiveChannel[dict[str, Any]], stop_all: trio.CancelScope
    ) -> None:
        async with receive:
            try:
                with LineWriter(output) as out:
                    async for msmt in receive:
                        line = _line(msmt)
                        out.write(line)
                        if written is not None:
                            await written(line)
                        _count(msmt)
            except WriteError as exc:
                # the file ends on a whole line: cancel everything before the channel closes
                stats.write_error = exc
                stop_all.cancel()

    def _line(msmt: dict[str, Any]) -> bytes:
        try:
            return to_line(msmt)
        except Exception as exc:  # a measurement that cannot be encoded is a bug: keep the target
            return _encode(_error_line(str(msmt.get("input")), exc))

    def _count(msmt: dict[str, Any]) -> None:
        row = summarize(msmt)
        stats.done += 1
        stats.verdicts[row.verdict.split(" ", 1)[0]] += 1
        if "blocked" in row.verdict:
            stats.blocked += 1
        if row.verdict != "accessible" and len(stats.rows) < SUMMARY_ROWS:
            stats.rows.append(row)
        sink.finished(row, stats)

    async def interrupt_watcher(cancel_all: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if not stop_starting.is_set():
                    stop_starting.set()
                    stats.interrupted = True
                    sink.interrupted()
                else:
                    cancel_all.cancel()
                    return

    with trio.CancelScope() as everything:
        async with trio.open_nursery() as nursery:
            watcher_scope = trio.CancelScope()

            async def watch() -> None:
                with watcher_scope:
                    await interrupt_watcher(everything)

            nursery.start_soon(watch)
            async with trio.open_nursery() as pipeline:
                pipeline.start_soon(writer, receive, everything)
                pipeline.start_soon(producer, send)
            watcher_scope.cancel()
    sink.close()
    return stats


def _encode(msmt: dict[str, Any]) -> bytes:
    return orjson.dumps(msmt, option=orjson.OPT_APPEND_NEWLINE)


def _error_line(url: str, exc: Exception) -> dict[str, Any]:
    from probe.failures import Operation, classify

    return {"input": url, "test_keys": {"x_failure": classify(exc, Operation.TOP_LEVEL).failure}}


def _dedup(items: Iterable[Target | BadLine]) -> Iterator[Target | BadLine]:
    """Drop repeated URLs within one run (bounded by the number of distinct targets)."""
    seen: set[str] = set()
    for item in items:
        if isinstance(item, Target):
            if item.url in seen:
                continue
            seen.add(item.url)
        yield item
