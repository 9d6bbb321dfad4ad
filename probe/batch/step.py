"""The per-chunk step: raw lines in, partitioned Arrow tables out (pure, picklable).

This is the only work that runs on the process pool or the Dask workers. For each line it
parses JSON (orjson), re-derives the verdict, flattens the measurement and assigns the
deterministic ids: ``msmt_id = uuid5(NAMESPACE, "<source>:<line>")`` (as Censored Planet does),
``obs_id = "<msmt_id>:<n>"``. Lines that are not a JSON object are *malformed*: they are counted
and returned with file and line; they never raise.
"""

from __future__ import annotations

import resource
import uuid
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from probe.batch.flatten import measurement_fields, observation_rows, partition_of
from probe.batch.reader import Chunk
from probe.batch.schema import MEASUREMENT_SCHEMA, OBSERVATION_SCHEMA
from probe.batch.verdict import derive_verdict

_EPOCH_DAYS = 719163  # date(1970, 1, 1).toordinal()


def _wire(schema: pa.Schema) -> pa.Schema:
    """``schema`` with timestamps as int64 seconds and dates as int32 days since the epoch.

    Rows are built with plain integers and the table is cast to the real schema afterwards:
    pyarrow reads ``PYARROW_IGNORE_TIMEZONE`` from the environment for every ``datetime`` it
    converts, which cost more than the rest of the conversion.
    """
    fields = []
    for f in schema:
        if pa.types.is_timestamp(f.type):
            f = f.with_type(pa.int64())
        elif pa.types.is_date32(f.type):
            f = f.with_type(pa.int32())
        fields.append(f)
    return pa.schema(fields)


_MEASUREMENT_WIRE = _wire(MEASUREMENT_SCHEMA)
_OBSERVATION_WIRE = _wire(OBSERVATION_SCHEMA)

#: namespace of the deterministic measurement ids (never change it: ids would change)
NAMESPACE = uuid.UUID("6f1c3c52-5d1e-4d55-9a53-1b0c8f0e2b7a")

Partition = tuple[str, str]


@dataclass(frozen=True)
class StepOptions:
    """What the step needs besides the lines: the analysis' reference data."""

    fingerprints: Any = None
    public_ranges: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A malformed line or an edge case, with where it was."""

    source: str
    line: int
    kind: str
    detail: str


@dataclass
class ChunkResult:
    """The step's output for one chunk."""

    index: int
    lines: int = 0
    measurements: dict[Partition, pa.Table] = field(default_factory=dict)
    observations: dict[Partition, pa.Table] = field(default_factory=dict)
    malformed: list[Problem] = field(default_factory=list)
    edge_cases: list[Problem] = field(default_factory=list)
    rules_versions: set[str] = field(default_factory=set)
    #: peak RSS (KiB) of the process that ran the step, for the benchmark's memory figure
    peak_rss_kb: int = 0


def measurement_id(source: str, line: int) -> str:
    """The deterministic id of the measurement at ``source:line``."""
    return str(uuid.uuid5(NAMESPACE, f"{source}:{line}"))


def _rows_for(
    msmt: Mapping[str, Any], source: str, line: int, options: StepOptions
) -> tuple[dict[str, Any], list[dict[str, Any]], Partition]:
    issues: list[str] = []
    fields = measurement_fields(msmt, issues)
    verdict = derive_verdict(
        msmt, fingerprints=options.fingerprints, public_ranges=options.public_ranges
    )
    msmt_id = measurement_id(source, line)
    part = partition_of(fields)
    when = fields["measurement_start_time"]
    if when is not None:
        # whole seconds, as pyarrow converts a datetime to timestamp("s")
        fields["measurement_start_time"] = timegm(when.timetuple())
        fields["day"] = fields["day"].toordinal() - _EPOCH_DAYS
    shared = {
        "msmt_id": msmt_id,
        "test_name": fields["test_name"],
        "target": fields["target"],
        "probe_cc": fields["probe_cc"],
        "probe_asn": fields["probe_asn"],
        "measurement_start_time": fields["measurement_start_time"],
    }
    observations = observation_rows(msmt)
    for n, obs in enumerate(observations):
        obs.update(shared)
        obs["obs_id"] = f"{msmt_id}:{n}"
        obs["obs_index"] = n
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
    """Parse, classify and flatten every line of ``chunk`` (total: never raises for bad data)."""
    result = ChunkResult(index=chunk.index, lines=len(chunk.lines))
    msmt_rows: dict[Partition, list[dict[str, Any]]] = {}
    obs_rows: dict[Partition, list[dict[str, Any]]] = {}
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
        msmt_rows.setdefault(part, []).append(row)
        if observations:
            obs_rows.setdefault(part, []).extend(observations)
        if row["rules_version"]:
            result.rules_versions.add(row["rules_version"])
        for issue in row["issues"]:
            result.edge_cases.append(Problem(chunk.source, line, "field", issue))
        if row["verdict_error"]:
            result.edge_cases.append(
                Problem(chunk.source, line, "verdict", str(row["verdict_error"]))
            )
    for part, rows in msmt_rows.items():
        table = pa.Table.from_pylist(rows, schema=_MEASUREMENT_WIRE)
        result.measurements[part] = table.cast(MEASUREMENT_SCHEMA)
    for part, rows in obs_rows.items():
        table = pa.Table.from_pylist(rows, schema=_OBSERVATION_WIRE)
        result.observations[part] = table.cast(OBSERVATION_SCHEMA)
    result.peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result
