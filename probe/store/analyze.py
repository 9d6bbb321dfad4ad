"""Incremental analysis of a collector store into a Parquet dataset.

:func:`analyze_store` lists the store's parts that pass the filter, keeps those the dataset does
not hold yet (``_store_state.json``, :mod:`probe.store.state`), and streams them into the batch
pipeline as named byte streams (:class:`probe.batch.reader.InputFile` with an ``opener``): a
local part is read from disk, an S3 part straight from the object store, nothing is copied. The
opener gives a part as stored (gzip'd): the batch reader inflates it as it inflates a local
``.gz``, so a damaged part is reported (part, uncompressed offset, last whole line) and the run
goes on with the next one.
Each part's name in the dataset (``source_file``, and so the deterministic ``msmt_id``) is its
key, ``raw/YYYYMMDD/HH/CC/test/...jsonl.gz``: the same data gives the same ids whether the store
is a folder or a bucket. A run writes its own Parquet files (``r<run>-N.parquet``) beside the
earlier runs' in the same hive partitions, then records its parts in the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from probe.batch.pipeline import Summary
from probe.batch.reader import InputFile
from probe.batch.step import StepOptions
from probe.collector.storage import ObjectStore, S3Settings, open_store
from probe.store import state as state_file
from probe.store.listing import StoreFilter, StorePart, list_parts
from probe.store.state import StoreState

#: the tables a run writes files into (probe.batch.schema)
TABLES = ("measurements", "observations")


@dataclass
class StoreRun:
    """What one :func:`analyze_store` call did."""

    #: this run's number; None when there was nothing new to read
    run: int | None
    new_files: int
    #: parts that passed the filter but were already in the dataset
    known_files: int
    summary: Summary | None
    state: StoreState


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def discard_run(output: Path, run: int) -> int:
    """Delete the Parquet files of run ``run`` (a run that died before recording itself)."""
    removed = 0
    for table in TABLES:
        for path in (output / table).glob(f"*/*/r{run}-*.parquet"):
            path.unlink()
            removed += 1
    return removed


def _covers(state: StoreState, parts: list[StorePart]) -> dict[str, Any]:
    known = [p.part for p in parts if p.key in state.files]
    days = sorted({p.date for p in known})
    return {
        "first_day": f"{days[0][:4]}-{days[0][4:6]}-{days[0][6:]}" if days else None,
        "last_day": f"{days[-1][:4]}-{days[-1][4:6]}-{days[-1][6:]}" if days else None,
        "files": len(state.files),
        "lines": sum(int(r.get("lines", 0)) for r in state.runs),
        "measurements": sum(int(r.get("measurements", 0)) for r in state.runs),
        "countries": sorted({p.cc for p in known}),
        "tests": sorted({p.test for p in known}),
    }


def analyze_store(
    url: str,
    output: Path,
    *,
    filt: StoreFilter | None = None,
    s3: S3Settings | None = None,
    store: ObjectStore | None = None,
    options: StepOptions | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[Summary, float], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> StoreRun:
    """Add the store's new parts to the dataset at ``output`` (see the module doc).

    ``warn(line)`` is told of a part that could not be read to its end (its whole lines are
    analysed, the damage is listed in the summary, the part counts as read).

    Raises :class:`probe.store.state.StateError` when ``output`` holds another store's or
    another filter's dataset, :class:`probe.collector.storage.StoreError` for a bad store.
    """
    from probe.batch import pipeline

    filt = filt or StoreFilter()
    store = store or open_store(url, s3=s3)
    state = state_file.load(output, store=store.url, filter=filt.to_json())
    output.mkdir(parents=True, exist_ok=True)
    if state.in_progress is not None:
        discard_run(output, int(state.in_progress["run"]))
        state.in_progress = None
        state_file.save(output, state)
    parts = list_parts(store, filt)
    new = [p for p in parts if p.key not in state.files]
    if not new:
        return StoreRun(None, 0, len(parts), None, state)
    run = state.next_run
    started = _now()
    state.in_progress = {"run": run, "started": started, "files": [p.key for p in new]}
    state_file.save(output, state)
    files = [InputFile(Path(p.key), p.key, opener=partial(store.open, p.key)) for p in new]
    summary = pipeline.run(
        [store.url],
        output,
        options=options,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        warn=warn,
        files=files,
        part_prefix=f"r{run}",
    )
    state.files.update({p.key: p.size for p in new})
    record = asdict(summary)
    state.runs.append(
        {
            "run": run,
            "started": started,
            "finished": _now(),
            "files": len(new),
            "first_file": new[0].key,
            "last_file": new[-1].key,
            **{k: record[k] for k in ("lines", "measurements", "observations", "malformed_count")},
            "rules_versions": summary.rules_versions,
            "schema_version": summary.schema_version,
        }
    )
    state.covers = _covers(state, parts)
    state.in_progress = None
    state_file.save(output, state)
    return StoreRun(run, len(new), len(parts) - len(new), summary, state)
