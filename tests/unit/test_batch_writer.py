"""The partitioned Parquet writer: one file per finished partition, bounded memory, no loss."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from probe.batch.dataset import PartitionedWriter

SCHEMA = pa.schema([("n", pa.int64()), ("text", pa.string())])


def _chunk(
    rows: list[tuple[tuple[str, str], int]],
) -> tuple[pa.Table, list[tuple[tuple[str, str], int, int]]]:
    """A chunk table grouped by partition, and its runs, as the step returns them."""
    grouped: dict[tuple[str, str], list[int]] = {}
    for part, n in rows:
        grouped.setdefault(part, []).append(n)
    numbers: list[int] = []
    runs: list[tuple[tuple[str, str], int, int]] = []
    for part, ns in grouped.items():
        runs.append((part, len(numbers), len(ns)))
        numbers.extend(ns)
    table = pa.table({"n": numbers, "text": [f"row {n} " * 20 for n in numbers]}, schema=SCHEMA)
    return table, runs


def _read_back(root: Path) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for path in sorted(root.glob("date=*/cc=*/part-*.parquet")):
        part = (path.parent.parent.name[5:], path.parent.name[3:])
        out.setdefault(part, []).extend(pq.read_table(path).column("n").to_pylist())
    return out


def test_time_ordered_input_writes_each_partition_once(tmp_path: Path) -> None:
    # 40 days x 3 countries, in time order, chunks of 50 rows spanning about two days
    rows = [((f"2024-01-{d + 1:02d}", cc), d * 1000 + i) for d in range(40) for i in range(30)
            for cc in ("RU", "IR", "CN")]  # fmt: skip
    cap = 40_000
    with PartitionedWriter(tmp_path, SCHEMA, max_buffered_bytes=cap) as writer:
        for start in range(0, len(rows), 50):
            table, runs = _chunk(rows[start : start + 50])
            writer.write_runs(table, runs)
            assert writer.held_bytes <= cap
    files = list(tmp_path.glob("date=*/cc=*/*.parquet"))
    assert len(files) == 120  # every partition was flushed once, after it was complete
    expected: dict[tuple[str, str], list[int]] = {}
    for part, n in rows:
        expected.setdefault(part, []).append(n)
    assert _read_back(tmp_path) == expected


def test_random_order_keeps_memory_bounded_and_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(5)
    parts = [(f"2024-02-{d + 1:02d}", cc) for d in range(20) for cc in ("DE", "US", "TR")]
    rows = [(rng.choice(parts), n) for n in range(6000)]
    cap = 150_000
    with PartitionedWriter(tmp_path, SCHEMA, max_buffered_bytes=cap, max_open_files=4) as w:
        for start in range(0, len(rows), 200):
            table, runs = _chunk(rows[start : start + 200])
            assert table.nbytes < cap // 2
            w.write_runs(table, runs)
            assert w.held_bytes <= cap  # the chunk tables pinned by slices count in full
        assert w.rows_written < len(rows)
    assert w.held_bytes == 0 and w.rows_written == len(rows)
    expected: dict[tuple[str, str], list[int]] = {}
    for part, n in rows:
        expected.setdefault(part, []).append(n)
    assert _read_back(tmp_path) == expected


def test_small_columns_get_the_light_codec_and_the_rest_zstd(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("cc", pa.string()),
            ("ok", pa.bool_()),
            ("tags", pa.list_(pa.string())),
            ("url", pa.string()),
        ]
    )
    w = PartitionedWriter(tmp_path, schema, dictionary_columns=["cc"])
    rows = {"cc": ["RU", "IR"] * 50, "ok": [True, False] * 50, "tags": [["a", "b"]] * 100}
    rows["url"] = [f"https://example.org/{n}" for n in range(100)]
    w.write(("2024-03-01", "RU"), pa.table(rows, schema=schema))
    w.close()
    (path,) = tmp_path.glob("date=*/cc=*/part-*.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    codecs = {group.column(i).path_in_schema: group.column(i).compression for i in range(4)}
    assert codecs == {"cc": "SNAPPY", "ok": "SNAPPY", "tags.list.element": "SNAPPY", "url": "ZSTD"}
    assert pq.read_table(path).to_pydict() == rows
