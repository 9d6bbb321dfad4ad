"""Incremental, hive-partitioned Parquet writer for the batch dataset.

Layout: ``DIR/<table>/date=YYYY-MM-DD/cc=XX/part-N.parquet``. Rows arrive as small Arrow
tables (one per chunk and partition) and are buffered per partition; a partition is written as
one row group when it holds ``row_group_rows`` rows, and when all of them together exceed
``max_buffered_rows`` the largest are flushed until half of that is left. At most
``max_open_files`` writers stay open
(least recently used closed first; a partition that comes back gets the next ``part-N``), so
memory stays bounded whatever the input size or the number of partitions. The writer is used
by one thread only (the pipeline's main loop), in input order, so the files are deterministic.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

Partition = tuple[str, str]


@dataclass
class _Buffer:
    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0


class PartitionedWriter:
    """Write one table (``measurements`` or ``observations``) of the dataset."""

    def __init__(
        self,
        root: Path,
        schema: pa.Schema,
        *,
        metadata: dict[str, str] | None = None,
        row_group_rows: int = 65536,
        max_buffered_rows: int = 400_000,
        max_open_files: int = 256,
        compression: str = "zstd",
    ) -> None:
        self._root = root
        self._schema = schema.with_metadata(metadata or {})
        self._row_group_rows = row_group_rows
        self._max_buffered = max_buffered_rows
        self._max_open = max_open_files
        self._compression = compression
        self._buffers: dict[Partition, _Buffer] = {}
        self._writers: OrderedDict[Partition, pq.ParquetWriter] = OrderedDict()
        self._next_part: dict[Partition, int] = {}
        self._buffered = 0
        self.rows_written = 0
        self.files: list[Path] = []

    def write(self, partition: Partition, table: pa.Table) -> None:
        """Queue ``table`` (same schema as the writer) for ``partition``."""
        if table.num_rows == 0:
            return
        buf = self._buffers.setdefault(partition, _Buffer())
        buf.tables.append(table)
        buf.rows += table.num_rows
        self._buffered += table.num_rows
        if buf.rows >= self._row_group_rows:
            self._flush(partition)
        if self._buffered > self._max_buffered:
            # largest first, down to half the cap: small partitions keep filling up
            for part in sorted(self._buffers, key=lambda p: -self._buffers[p].rows):
                if self._buffered <= self._max_buffered // 2:
                    break
                self._flush(part)

    def _writer_for(self, partition: Partition) -> pq.ParquetWriter:
        writer = self._writers.get(partition)
        if writer is not None:
            self._writers.move_to_end(partition)
            return writer
        while len(self._writers) >= self._max_open:
            _, oldest = self._writers.popitem(last=False)
            oldest.close()
        day, cc = partition
        folder = self._root / f"date={day}" / f"cc={cc}"
        folder.mkdir(parents=True, exist_ok=True)
        number = self._next_part.get(partition, 0)
        self._next_part[partition] = number + 1
        path = folder / f"part-{number}.parquet"
        writer = pq.ParquetWriter(path, self._schema, compression=self._compression)
        self._writers[partition] = writer
        self.files.append(path)
        return writer

    def _flush(self, partition: Partition) -> None:
        buf = self._buffers.pop(partition, None)
        if buf is None or not buf.rows:
            return
        table = pa.concat_tables(buf.tables).replace_schema_metadata(self._schema.metadata)
        self._writer_for(partition).write_table(table, row_group_size=self._row_group_rows)
        self._buffered -= buf.rows
        self.rows_written += buf.rows

    def close(self) -> None:
        """Flush every buffer and close every file."""
        for part in list(self._buffers):
            self._flush(part)
        while self._writers:
            _, writer = self._writers.popitem(last=False)
            writer.close()

    def __enter__(self) -> PartitionedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
