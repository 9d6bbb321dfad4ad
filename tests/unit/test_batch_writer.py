"""The partitioned Parquet writer: one file per finished partition, bounded memory, no loss."""

from __future__ import annotations

import random
import threading
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


def _write_all(root: Path, rows: list[tuple[tuple[str, str], int]], threads: int) -> set[str]:
    """Write ``rows`` in chunks of 10 (small chunks against the row cap leave flushed rows
    pending between calls, so a partition can be pending twice at the close), closing with
    ``threads`` threads; returns the names of the threads that wrote."""
    names: set[str] = set()
    original = pq.ParquetWriter.write_table

    def spy(self: pq.ParquetWriter, table: pa.Table, row_group_size: int | None = None) -> None:
        names.add(threading.current_thread().name)
        original(self, table, row_group_size=row_group_size)

    pq.ParquetWriter.write_table = spy  # type: ignore[method-assign]
    try:
        w = PartitionedWriter(root, SCHEMA, max_buffered_rows=300, max_open_files=12,
                              close_threads=threads)  # fmt: skip
        for start in range(0, len(rows), 10):
            w.write_runs(*_chunk(rows[start : start + 10]))
        names.clear()  # only the close's writing counts
        # what the close writes: the rows still pending, then every buffer
        closing = [p for p, _buf in w._pending] + list(w._buffers)  # noqa: SLF001
        assert len(set(closing)) < len(closing)  # some partition is written twice
        w.close()
    finally:
        pq.ParquetWriter.write_table = original  # type: ignore[method-assign]
    assert w.rows_written == len(rows) and w.held_bytes == 0
    return names


def test_a_threaded_close_writes_the_same_files(tmp_path: Path) -> None:
    rng = random.Random(7)
    parts = [(f"2024-04-{d + 1:02d}", cc) for d in range(12) for cc in ("BY", "KZ", "RU")]
    rows = [(rng.choice(parts), n) for n in range(2900)]
    one, three = tmp_path / "one", tmp_path / "three"
    assert _write_all(one, rows, 1) == {threading.current_thread().name}
    assert len(_write_all(three, rows, 3) - {threading.current_thread().name}) > 1
    files = sorted(p.relative_to(one) for p in one.rglob("*.parquet"))
    assert files == sorted(p.relative_to(three) for p in three.rglob("*.parquet"))
    assert any(p.name == "part-1.parquet" for p in files)  # files were closed and reopened
    for rel in files:
        assert (one / rel).read_bytes() == (three / rel).read_bytes(), rel


def _pending_twice(root: Path, threads: int) -> dict[str, bytes]:
    """A close whose first batch holds a partition twice (A) and whose second batch must
    reopen a file that the first batch's lookups made least recently used (C)."""
    w = PartitionedWriter(root, SCHEMA, max_open_files=2, close_threads=threads)
    rows = [((f"2024-05-0{d}", "RU"), d * 100 + i) for d in (1, 2, 3, 4) for i in range(5)]
    w.write_runs(*_chunk(rows))  # buffers: 01 (B), 02 (A), 03 (C), 04 (D)
    for day in ("01", "02", "03"):
        w._flush((f"2024-05-{day}", "RU"))  # noqa: SLF001 - pending: B, A, C
    w.write_runs(*_chunk([(("2024-05-02", "RU"), 900), (("2024-05-03", "RU"), 901)]))
    w._flush(("2024-05-02", "RU"))  # noqa: SLF001 - B written; pending: A, C, A
    w.close()  # writes A, C, A, then D, C
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.parquet")}


def test_a_threaded_close_opens_and_closes_files_as_one_thread_does(tmp_path: Path) -> None:
    one = _pending_twice(tmp_path / "one", 1)
    assert "date=2024-05-03/cc=RU/part-1.parquet" in one  # C was closed, then reopened
    assert _pending_twice(tmp_path / "two", 2) == one
    read = pq.read_table(tmp_path / "two" / "date=2024-05-02/cc=RU/part-0.parquet")
    assert read.column("n").to_pylist() == [200, 201, 202, 203, 204, 900]
