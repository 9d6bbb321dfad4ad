"""The per-chunk step: raw lines in, partitioned Arrow tables out (pure, picklable).

This is the only work that runs on the process pool or the Dask workers. For each line it
parses JSON (orjson), re-derives the verdict, flattens the measurement and assigns the
deterministic ids: ``msmt_id = uuid5(NAMESPACE, "<source>:<line>")`` (as Censored Planet does),
``obs_id = "<msmt_id>:<n>"``. Lines that are not a JSON object are *malformed*: they are counted
and returned with file and line; they never raise.
"""

from __future__ import annotations

import gc
import hashlib
import operator
import resource
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from probe.batch.flatten import (
    STAGE_COLUMNS,
    StageRow,
    measurement_fields,
    observation_rows,
    partition_of,
)
from probe.batch.reader import Chunk
from probe.batch.schema import MEASUREMENT_SCHEMA, OBSERVATION_SCHEMA
from probe.batch.verdict import derive_verdict

_EPOCH_DAYS = 719163  # date(1970, 1, 1).toordinal()

#: namespace of the deterministic measurement ids (never change it: ids would change)
NAMESPACE = uuid.UUID("6f1c3c52-5d1e-4d55-9a53-1b0c8f0e2b7a")

Partition = tuple[str, str]


#: The value classes below are plain dataclasses, read-only by convention: this module is
#: compiled (probe.native), and a frozen dataclass compiled by mypyc cannot be unpickled, which
#: the process pool and Dask do with every chunk's options and results.


@dataclass
class StepOptions:
    """What the step needs besides the lines: the analysis' reference data."""

    fingerprints: Any = None
    public_ranges: tuple[Any, ...] = ()


@dataclass
class Problem:
    """A malformed line or an edge case, with where it was."""

    source: str
    line: int
    kind: str
    detail: str


#: ``(partition, first row, row count)``: a run of rows of one partition in a chunk's table
Run = tuple[Partition, int, int]


@dataclass
class ChunkResult:
    """The step's output for one chunk.

    Each dataset table comes back as ONE Arrow table whose rows are grouped by partition
    (``*_runs`` says where each partition's rows are): one conversion and one compact pickle
    per chunk instead of one per partition. ``measurements`` / ``observations`` give the
    per-partition views (zero-copy slices).
    """

    index: int
    lines: int = 0
    measurement_table: pa.Table | None = None
    measurement_runs: list[Run] = field(default_factory=list)
    observation_table: pa.Table | None = None
    observation_runs: list[Run] = field(default_factory=list)
    malformed: list[Problem] = field(default_factory=list)
    edge_cases: list[Problem] = field(default_factory=list)
    rules_versions: set[str] = field(default_factory=set)
    #: peak RSS (KiB) of the process that ran the step, for the benchmark's memory figure
    peak_rss_kb: int = 0
    #: CPU seconds the step took (the benchmark's per-measurement cost, split by process)
    cpu_seconds: float = 0.0

    @property
    def measurements(self) -> dict[Partition, pa.Table]:
        return _views(self.measurement_table, self.measurement_runs)

    @property
    def observations(self) -> dict[Partition, pa.Table]:
        return _views(self.observation_table, self.observation_runs)


def _views(table: pa.Table | None, runs: list[Run]) -> dict[Partition, pa.Table]:
    if table is None:
        return {}
    return {part: table.slice(first, count) for part, first, count in runs}


#: an entry of a chunk: the measurement row (a tuple in schema order) and its stage rows
_Entry = tuple[tuple[Any, ...], list[StageRow]]

#: the observation columns copied from the measurement's row (``take``): ``msmt_id``, then
#: those after ``obs_index``
_FROM_MEASUREMENT = (
    "msmt_id", "test_name", "target", "probe_cc", "probe_asn", "measurement_start_time",
)  # fmt: skip
_COLUMN = {name: i for i, name in enumerate(MEASUREMENT_SCHEMA.names)}
_STAGE_FIELDS = [OBSERVATION_SCHEMA.field(name) for name in STAGE_COLUMNS]


def _arrays(rows: list[tuple[Any, ...]], fields: Sequence[pa.Field]) -> list[pa.Array]:
    """Columns of ``rows`` (tuples in ``fields`` order), built with one ``zip``: several times
    cheaper than ``Table.from_pylist`` on dicts."""
    columns = zip(*rows, strict=True)
    return [pa.array(column, type=f.type) for column, f in zip(columns, fields, strict=True)]


def _tables(
    groups: dict[Partition, list[_Entry]],
) -> tuple[pa.Table | None, list[Run], pa.Table | None, list[Run]]:
    """The chunk's measurement and observation tables, rows grouped by partition (partitions in
    first-seen order), with their runs.

    The observation columns that repeat the measurement's values (its id, test, target,
    network, time) are not converted from Python once per observation: Arrow copies them
    from the measurement table (``take``), and ``obs_id`` is joined there too.
    """
    if not groups:
        return None, [], None, []
    msmt_flat: list[tuple[Any, ...]] = []
    msmt_runs: list[Run] = []
    obs_flat: list[StageRow] = []
    obs_runs: list[Run] = []
    owner: list[int] = []  # the measurement row of each observation row
    index: list[int] = []  # its position among the measurement's observations
    for part, entries in groups.items():
        first_msmt, first_obs = len(msmt_flat), len(obs_flat)
        for row, stages in entries:
            if stages:
                owner += [len(msmt_flat)] * len(stages)
                index += range(len(stages))
                obs_flat += stages
            msmt_flat.append(row)
        msmt_runs.append((part, first_msmt, len(msmt_flat) - first_msmt))
        if len(obs_flat) > first_obs:
            obs_runs.append((part, first_obs, len(obs_flat) - first_obs))
    msmt_arrays = _arrays(msmt_flat, list(MEASUREMENT_SCHEMA))
    msmt_table = pa.Table.from_arrays(msmt_arrays, schema=MEASUREMENT_SCHEMA)
    if not obs_flat:
        return msmt_table, msmt_runs, None, []
    take = pa.array(owner, type=pa.int32())
    msmt_id, *shared = (msmt_arrays[_COLUMN[name]].take(take) for name in _FROM_MEASUREMENT)
    obs_index = pa.array(index, type=pa.int32())
    obs_id = pc.binary_join_element_wise(msmt_id, pc.cast(obs_index, pa.string()), ":")
    arrays = [obs_id, msmt_id, obs_index, *shared, *_arrays(obs_flat, _STAGE_FIELDS)]
    return msmt_table, msmt_runs, pa.Table.from_arrays(arrays, schema=OBSERVATION_SCHEMA), obs_runs


_NAMESPACE_BYTES = NAMESPACE.bytes


def measurement_id(source: str, line: int) -> str:
    """The deterministic id of the measurement at ``source:line``: ``uuid5(NAMESPACE, ...)``,
    computed without building ``uuid.UUID`` objects (same value, a third of the cost)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{source}:{line}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MEASUREMENT_ROW = operator.itemgetter(*MEASUREMENT_SCHEMA.names)


def _rows_for(
    msmt: dict[str, Any], source: str, line: int, options: StepOptions
) -> tuple[dict[str, Any], list[StageRow], Partition]:
    issues: list[str] = []
    fields = measurement_fields(msmt, issues)
    verdict = derive_verdict(
        msmt, fingerprints=options.fingerprints, public_ranges=options.public_ranges
    )
    msmt_id = measurement_id(source, line)
    part = partition_of(fields)
    when = fields["measurement_start_time"]
    if when is not None:
        # plain integers (seconds, days since the epoch): for each ``datetime`` it converts,
        # pyarrow reads PYARROW_IGNORE_TIMEZONE from the environment, which cost more than the
        # rest of the conversion. Whole seconds, as pyarrow truncates a datetime.
        days = when.toordinal() - _EPOCH_DAYS
        fields["measurement_start_time"] = (
            days * 86400 + when.hour * 3600 + when.minute * 60 + when.second
        )  # calendar.timegm(when.timetuple()), without building a struct_time
        fields["day"] = days
    observations = observation_rows(msmt)
    outcome = verdict["outcome"]
    row = fields | verdict
    row["msmt_id"] = msmt_id
    row["source_file"] = source
    row["source_line"] = line
    row["outcome_stage"] = outcome.partition("/")[0] if isinstance(outcome, str) else None
    row["issues"] = issues
    row["n_observations"] = len(observations)
    return row, observations, part


def process_chunk(chunk: Chunk, options: StepOptions) -> ChunkResult:
    """Parse, classify and flatten every line of ``chunk`` (total: never raises for bad data).

    The cyclic garbage collector is paused meanwhile: the step allocates a few hundred
    containers per measurement (the parsed JSON, the observations) and frees them all, with no
    reference cycles, so the collector's passes, which the allocations trigger, found nothing
    and cost several percent of the step. It is re-enabled (if it was) before returning.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _process(chunk, options)
    finally:
        if collecting:
            gc.enable()


def _process(chunk: Chunk, options: StepOptions) -> ChunkResult:
    started = time.process_time()
    result = ChunkResult(index=chunk.index, lines=len(chunk.lines))
    groups: dict[Partition, list[_Entry]] = {}
    for line, raw in zip(chunk.line_numbers, chunk.lines, strict=True):
        try:
            msmt = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            result.malformed.append(Problem(chunk.source, line, "json", str(exc)[:200]))
            continue
        if not isinstance(msmt, dict):
            kind = type(msmt).__name__
            result.malformed.append(Problem(chunk.source, line, "not-an-object", kind))
            continue
        if "test_name" not in msmt and "test_keys" not in msmt:
            keys = ",".join(sorted(msmt)[:5])
            result.malformed.append(Problem(chunk.source, line, "not-a-measurement", keys))
            continue
        row, observations, part = _rows_for(msmt, chunk.source, line, options)
        groups.setdefault(part, []).append((_MEASUREMENT_ROW(row), observations))
        if row["rules_version"]:
            result.rules_versions.add(row["rules_version"])
        for issue in row["issues"]:
            result.edge_cases.append(Problem(chunk.source, line, "field", issue))
        if row["verdict_error"]:
            result.edge_cases.append(
                Problem(chunk.source, line, "verdict", str(row["verdict_error"]))
            )
    tables = _tables(groups)
    result.measurement_table, result.measurement_runs = tables[0], tables[1]
    result.observation_table, result.observation_runs = tables[2], tables[3]
    result.peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.cpu_seconds = time.process_time() - started
    return result
