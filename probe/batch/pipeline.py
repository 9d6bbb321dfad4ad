"""Run the batch: read chunks, run the pure step on a pool or a Dask cluster, write Parquet.

``run()`` keeps a bounded window of chunks in flight (``2 * workers + 2``) and consumes the
results strictly in input order, so memory does not grow with the input and the dataset is the
same byte for byte whether the step ran in this process (``workers=0``), on a local process
pool (default) or on an existing Dask distributed cluster (``scheduler="tcp://host:port"``).
At the end ``DIR/_summary.json`` records the inputs, counts, rules versions, the malformed
lines (file and line) and the edge cases met. The command line (options, printing) is
``probe.commands.analyze``'s: this module is the library.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from probe import native
from probe.batch.dataset import PartitionedWriter
from probe.batch.heap import keep_large_blocks
from probe.batch.reader import Chunk, InputFile, UnreadableInput, discover, iter_chunks
from probe.batch.schema import (
    DICTIONARY_COLUMNS,
    MEASUREMENTS,
    OBSERVATIONS,
    SCHEMA_VERSION,
    SCHEMAS,
)
from probe.batch.step import ChunkResult, Problem, StepOptions, process_chunk

#: malformed lines / edge cases kept verbatim in the summary (all are counted)
MAX_LISTED = 1000


class _Pending(Protocol):
    def result(self) -> ChunkResult: ...


@dataclass
class Summary:
    """What a run did (also written as ``_summary.json``)."""

    inputs: list[str] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    measurements: int = 0
    observations: int = 0
    malformed_count: int = 0
    malformed: list[dict[str, Any]] = field(default_factory=list)
    edge_case_counts: dict[str, int] = field(default_factory=dict)
    edge_cases: list[dict[str, Any]] = field(default_factory=list)
    rules_versions: list[str] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION
    executor: str = ""
    #: whether this process runs the mypyc-compiled analysis (probe.native), else the sources
    compiled: bool = False
    worker_peak_rss_kb: int = 0
    #: CPU seconds spent in the per-chunk step (wherever it ran) and in this process
    step_cpu_seconds: float = 0.0
    main_cpu_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


class _Done:
    def __init__(self, value: ChunkResult) -> None:
        self._value = value

    def result(self) -> ChunkResult:
        return self._value


def _serial(options: StepOptions) -> Generator[Callable[[Chunk], _Pending], None, None]:
    yield lambda chunk: _Done(process_chunk(chunk, options))


#: A pool worker's copy of the run's options, set once when the worker starts (the pool's
#: initializer), not sent with every chunk: unpickling OONI's and Censored Planet's ~3,000
#: fingerprints compiles their regexes again, tens of milliseconds per chunk. Per process,
#: written once, before any chunk.
_WORKER_OPTIONS: list[StepOptions] = []


def _start_worker(options: StepOptions) -> None:
    _WORKER_OPTIONS[:] = [options]
    keep_large_blocks()


def _process_in_worker(chunk: Chunk) -> ChunkResult:
    return process_chunk(chunk, _WORKER_OPTIONS[0])


def _pool(options: StepOptions, workers: int) -> Generator[Callable[[Chunk], _Pending], None, None]:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(options,)
    ) as pool:

        def submit(chunk: Chunk) -> Future[ChunkResult]:
            return pool.submit(_process_in_worker, chunk)

        yield submit


def _dask(options: StepOptions, address: str) -> Generator[Callable[[Chunk], _Pending], None, None]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        shared = client.scatter(options, broadcast=True)

        def submit(chunk: Chunk) -> _Pending:
            future: _Pending = client.submit(process_chunk, chunk, shared, pure=False)
            return future

        yield submit


def run(
    paths: Sequence[str | Path],
    output: Path,
    *,
    options: StepOptions | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    max_lines: int = 2000,
    writer_rows: int = 65536,
    progress: Callable[[Summary, float], None] | None = None,
    progress_every: float = 1.0,
    files: Sequence[InputFile] | None = None,
    part_prefix: str = "part",
    warn: Callable[[str], None] | None = None,
) -> Summary:
    """Analyse every measurement under ``paths`` into the dataset at ``output``.

    ``progress(summary, elapsed_seconds)`` is called at most every ``progress_every`` seconds
    while the run goes on (the CLI prints a status line from it). ``files`` replaces the
    discovery of ``paths`` (named byte streams, e.g. a collector store's parts, see
    :mod:`probe.store`); ``part_prefix`` names the Parquet files this run writes. ``warn(line)``
    is told of an input file that could not be read to its end (the batch goes on with the next
    file)."""
    options = options or StepOptions()
    files = discover(paths) if files is None else list(files)
    keep_large_blocks()  # this process inflates, pickles and unpickles megabytes at a time
    started = time.perf_counter()
    cpu_started = time.process_time()
    if scheduler:
        executor, label = _dask(options, scheduler), f"dask:{scheduler}"
        window = 16
    elif workers == 0:
        executor, label, window = _serial(options), "serial", 1
    else:
        count = workers or min(os.cpu_count() or 1, 8)
        executor, label, window = _pool(options, count), f"pool:{count}", 2 * count + 2
    summary = Summary(inputs=[str(p) for p in paths], files=len(files), executor=label)
    summary.compiled = all(native.loaded().values())
    edge_counts: Counter[str] = Counter()
    rules: set[str] = set()
    meta = {"probe.schema_version": SCHEMA_VERSION}
    output.mkdir(parents=True, exist_ok=True)
    writers = {
        name: PartitionedWriter(
            output / name,
            schema,
            metadata=meta,
            row_group_rows=writer_rows,
            dictionary_columns=DICTIONARY_COLUMNS[name],
            close_threads=min(os.cpu_count() or 1, 4),
            part_prefix=part_prefix,
        )
        for name, schema in SCHEMAS.items()
    }
    try:
        submit = next(executor)
        pending: deque[_Pending] = deque()
        chunks = iter_chunks(
            files, max_lines=max_lines, on_unreadable=lambda f, e: _unreadable(summary, f, e, warn)
        )
        shown = started

        def consume(result: ChunkResult) -> None:
            nonlocal shown
            _consume(result, writers, summary, edge_counts, rules)
            now = time.perf_counter()
            if progress is not None and now - shown >= progress_every:
                shown = now
                progress(summary, now - started)

        for chunk in chunks:
            pending.append(submit(chunk))
            if len(pending) >= window:
                consume(pending.popleft().result())
        while pending:
            consume(pending.popleft().result())
    finally:
        for writer in writers.values():
            writer.close()
        executor.close()
    summary.edge_case_counts = dict(sorted(edge_counts.items()))
    summary.rules_versions = sorted(rules)
    summary.seconds = time.perf_counter() - started
    summary.main_cpu_seconds = time.process_time() - cpu_started
    (output / "_summary.json").write_text(json.dumps(asdict(summary), indent=1) + "\n")
    return summary


def _unreadable(
    summary: Summary,
    file: InputFile,
    error: UnreadableInput,
    warn: Callable[[str], None] | None,
) -> None:
    """A damaged input file: listed with its offset; the batch goes on with the next file."""
    summary.malformed_count += 1
    if len(summary.malformed) < MAX_LISTED:
        summary.malformed.append(
            {"file": file.source, "line": error.line, "kind": "unreadable", "detail": str(error)}
        )
    if warn is not None:
        warn(f"{file.source}: {error}; going on")


def _listed(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.source,
        "line": problem.line,
        "kind": problem.kind,
        "detail": problem.detail,
    }


def _consume(
    result: ChunkResult,
    writers: dict[str, PartitionedWriter],
    summary: Summary,
    edge_counts: Counter[str],
    rules: set[str],
) -> None:
    summary.lines += result.lines
    if result.measurement_table is not None:
        writers[MEASUREMENTS].write_runs(result.measurement_table, result.measurement_runs)
        summary.measurements += result.measurement_table.num_rows
    if result.observation_table is not None:
        writers[OBSERVATIONS].write_runs(result.observation_table, result.observation_runs)
        summary.observations += result.observation_table.num_rows
    summary.malformed_count += len(result.malformed)
    room = MAX_LISTED - len(summary.malformed)
    summary.malformed.extend(_listed(p) for p in result.malformed[: max(room, 0)])
    for problem in result.edge_cases:
        detail = problem.detail.split(":")[0] if problem.kind == "verdict" else problem.detail
        key = f"{problem.kind}:{detail}"
        edge_counts[key] += 1
        if len(summary.edge_cases) < MAX_LISTED:
            summary.edge_cases.append(_listed(problem))
    rules.update(result.rules_versions)
    summary.worker_peak_rss_kb = max(summary.worker_peak_rss_kb, result.peak_rss_kb)
    summary.step_cpu_seconds += result.cpu_seconds


def progress_line(summary: Summary, elapsed: float) -> str:
    """One status line: records so far, rate, malformed, elapsed."""
    rate = summary.lines / elapsed if elapsed > 0 else 0.0
    return (
        f"analyzed {summary.lines:,} records ({rate:,.0f}/s), "
        f"{summary.observations:,} observations, {summary.malformed_count:,} malformed, "
        f"{elapsed:,.0f}s"
    )


def _by_kind(items: list[dict[str, Any]]) -> str:
    kinds = Counter(str(item["kind"]) for item in items)
    return f" ({', '.join(f'{k}: {n}' for k, n in sorted(kinds.items()))})" if kinds else ""


def format_summary(summary: Summary, output: Path) -> str:
    """The human-readable end-of-run report."""
    lines = [
        f"read {summary.lines} records from {summary.files} files in {summary.seconds:.1f}s "
        f"({summary.rate:,.0f}/s, {summary.executor}, "
        f"{'compiled' if summary.compiled else 'pure-Python'} analysis)",
        f"wrote {summary.measurements} measurements and {summary.observations} observations "
        f"to {output}",
        f"rules versions: {', '.join(summary.rules_versions) or 'none'}",
        f"malformed: {summary.malformed_count}{_by_kind(summary.malformed)}",
    ]
    for item in summary.malformed[:20]:
        lines.append(f"  {item['file']}:{item['line']}: {item['kind']}: {item['detail']}")
    if summary.malformed_count > 20:
        lines.append(f"  ... {summary.malformed_count - 20} more in {output}/_summary.json")
    if summary.edge_case_counts:
        lines.append("edge cases (kept, see _summary.json):")
        for key, count in summary.edge_case_counts.items():
            lines.append(f"  {count:>8}  {key}")
    return "\n".join(lines)
