"""Named DuckDB queries over a batch dataset (embedded DuckDB, no server).

``open_dataset(DIR)`` returns a DuckDB connection with two views, ``measurements`` and
``observations``, over the hive-partitioned Parquet files. ``QUERIES`` maps a name to its SQL;
``run_query`` returns ``(columns, rows)``; ``render`` prints them as a terminal table, CSV or
JSON. Filters (country, ASN, target substring, date range) are bound parameters, never pasted
into the SQL text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Filters:
    """Restrict every query to part of the dataset (``None`` = no restriction)."""

    cc: str | None = None
    asn: str | None = None
    target: str | None = None
    since: str | None = None
    until: str | None = None


_WHERE = """
    (CAST($cc AS VARCHAR) IS NULL OR probe_cc = $cc)
    AND (CAST($asn AS VARCHAR) IS NULL OR probe_asn = $asn)
    AND (CAST($target AS VARCHAR) IS NULL OR contains(target, $target))
    AND (CAST($since AS DATE) IS NULL OR day >= CAST($since AS DATE))
    AND (CAST($until AS DATE) IS NULL OR day <= CAST($until AS DATE))
"""

#: name -> (description, SQL); every query reads the filtered view ``m``
QUERIES: dict[str, tuple[str, str]] = {
    "blocking-by-day": (
        "blocking per target x network x day: measurements, anomalies, rate, kinds",
        """SELECT target, probe_cc, probe_asn, day, count(*) AS measurements,
                  count(*) FILTER (WHERE anomaly) AS anomalies,
                  round(count(*) FILTER (WHERE anomaly) / count(*), 4) AS anomaly_rate,
                  string_agg(DISTINCT blocking, ',' ORDER BY blocking)
                      FILTER (WHERE anomaly) AS blocking
           FROM m GROUP BY ALL ORDER BY target, probe_cc, probe_asn, day""",
    ),
    "techniques": (
        "blocking techniques per target: outcome (stage/outcome), rule and count",
        """SELECT target, outcome_stage AS stage, outcome, rule_id, count(*) AS measurements,
                  count(DISTINCT probe_asn) AS networks
           FROM m WHERE anomaly GROUP BY ALL
           ORDER BY target, measurements DESC, outcome""",
    ),
    "first-last": (
        "first and last time each target was seen blocked, per network",
        """SELECT target, probe_cc, probe_asn, min(measurement_start_time) AS first_blocked,
                  max(measurement_start_time) AS last_blocked, count(*) AS anomalies
           FROM m WHERE anomaly GROUP BY ALL ORDER BY target, probe_cc, probe_asn""",
    ),
    "counts": (
        "counts and anomaly rates per country x test",
        """SELECT probe_cc, test_name, count(*) AS measurements,
                  count(*) FILTER (WHERE anomaly) AS anomalies,
                  count(*) FILTER (WHERE anomaly IS NULL) AS undetermined,
                  round(count(*) FILTER (WHERE anomaly) / count(*), 4) AS anomaly_rate,
                  count(DISTINCT probe_asn) AS networks, count(DISTINCT target) AS targets
           FROM m GROUP BY ALL ORDER BY probe_cc, test_name""",
    ),
    "stages": (
        "the stage at which each target fails (anomalies only)",
        """SELECT target, coalesce(outcome_stage, 'unknown') AS stage, count(*) AS anomalies
           FROM m WHERE anomaly GROUP BY ALL ORDER BY target, anomalies DESC, stage""",
    ),
    "blocking-over-time": (
        "anomalies per day per target and network (the report's time chart)",
        """SELECT target, probe_asn, day, count(*) AS measurements,
                  count(*) FILTER (WHERE anomaly) AS anomalies
           FROM m WHERE day IS NOT NULL GROUP BY ALL ORDER BY target, probe_asn, day""",
    ),
    "verdict-changes": (
        "measurements whose re-derived verdict differs from the one recorded in the file",
        """SELECT test_name, coalesce(recorded_blocking, 'null') AS recorded,
                  coalesce(blocking, 'null') AS now, rules_version, count(*) AS measurements
           FROM m WHERE recorded_blocking IS DISTINCT FROM blocking
                AND verdict_source = 'analysis'
           GROUP BY ALL ORDER BY measurements DESC, test_name""",
    ),
}


def _glob(root: Path, table: str) -> str:
    return (root / table / "**" / "*.parquet").as_posix().replace("'", "''")


def open_dataset(root: Path) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with views ``measurements`` and ``observations`` over ``root``."""
    if not (root / "measurements").is_dir():
        raise FileNotFoundError(f"{root} holds no dataset (no measurements/ folder)")
    con = duckdb.connect(":memory:")
    for table in ("measurements", "observations"):
        if not any((root / table).glob("**/*.parquet")):
            continue
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{_glob(root, table)}', "
            "hive_partitioning = true, hive_types = {'date': VARCHAR, 'cc': VARCHAR})"
        )
    return con


def run_query(
    con: duckdb.DuckDBPyConnection, name: str, filters: Filters | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run the named query; returns column names and rows."""
    filters = filters or Filters()
    _, sql = QUERIES[name]
    params = {
        "cc": filters.cc,
        "asn": filters.asn,
        "target": filters.target,
        "since": filters.since,
        "until": filters.until,
    }
    full = f"WITH m AS (SELECT * FROM measurements WHERE {_WHERE}) {sql}"
    cursor = con.execute(full, params)
    columns = [d[0] for d in cursor.description or []]
    return columns, [tuple(r) for r in cursor.fetchall()]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Format a result as ``table`` (aligned text), ``csv`` or ``json`` (a list of objects)."""
    cells = [[_cell(v) for v in row] for row in rows]
    if fmt == "json":
        return json.dumps([dict(zip(columns, row, strict=True)) for row in cells], indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buffer.getvalue().rstrip("\n")
    text = [["" if v is None else str(v) for v in row] for row in cells]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in text]
    return "\n".join([line, rule, *body, f"({len(rows)} rows)"])
