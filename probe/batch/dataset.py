"""Incremental, hive-partitioned Parquet writer for the batch dataset.

Layout: ``DIR/<table>/date=YYYY-MM-DD/cc=XX/part-N.parquet``. Rows arrive as small Arrow tables
(one per chunk, rows grouped by partition, see ``write_runs``) and are buffered per partition as
zero-copy slices; a partition is written as one row group when it holds ``row_group_rows`` rows,
and when all buffers together exceed ``max_buffered_rows`` rows or the chunk tables they pin
exceed ``max_buffered_bytes`` bytes (a chunk table counts in full until its last slice is
flushed), the partitions that received rows least recently are flushed until half of that is
left. OONI data is ordered by time, so those are the days that are complete: each is written
once, as one file with large row groups, instead of many small files. A flush only detaches the
partition's rows; the Parquet writing is done over the next calls (twice as many rows written as
arrive, in the order of the flushes), so the pipeline's main loop keeps the workers fed instead
of stalling them for the second a large flush takes. The caps count the pending rows too (they
are written at once if need be), so memory stays under them as before. At most
``max_open_files`` writers stay open (least recently used closed first; a partition that comes
back gets the next ``part-N``), so memory stays bounded whatever the input size or the number of
partitions. The writer is used by one thread only (the pipeline's main loop), in input order,
and every decision depends only on the rows, so the files are deterministic.

Columns are zstd-compressed, except the dictionary-encoded, boolean and list ones (snappy:
small, nearly incompressible pages where zstd's per-page set-up cost more than the bytes it
saved), and each file is written through a small buffer (one ``write`` per 16 KiB, not a
``write`` and an ``lseek`` per page).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

Partition = tuple[str, str]


@dataclass
class _Block:
    """A chunk table held by slices: its size, and how many buffers still use it (``live``:
    not flushed yet; ``unwritten``: not written yet)."""

    nbytes: int
    live: int
    unwritten: int


@dataclass
class _Buffer:
    tables: list[pa.Table] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    rows: int = 0


@dataclass
class _File:
    """An open partition file: the Parquet writer and the stream it writes to."""

    writer: pq.ParquetWriter
    sink: pa.NativeFile

    def close(self) -> None:
        self.writer.close()  # writes the footer; the stream is ours to close
        self.sink.close()


def _codecs(
    schema: pa.Schema, dictionary: Sequence[str] | bool, codec: str, light: str | None
) -> str | dict[str, str]:
    """The codec of each column: ``codec``, but ``light`` for the dictionary-encoded, boolean
    and list columns, whose pages are small and nearly incompressible (zstd saved a few
    bytes there, yet setting up its context for each page was a fifth of a small file's
    writing time)."""
    if light is None:
        return codec
    encoded = set(schema.names) if dictionary is True else set(dictionary or ())
    codecs: dict[str, str] = {}
    for f in schema:
        if pa.types.is_list(f.type):
            codecs[f"{f.name}.list.element"] = light  # keyed by the Parquet leaf column
        else:
            small = f.name in encoded or pa.types.is_boolean(f.type)
            codecs[f.name] = light if small else codec
    return codecs


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
        max_buffered_bytes: int = 96 << 20,
        max_open_files: int = 256,
        compression: str = "zstd",
        dictionary_columns: Sequence[str] | bool = True,
        light_compression: str | None = "snappy",
        file_buffer_bytes: int = 16 << 10,
        close_threads: int = 1,
        part_prefix: str = "part",
    ) -> None:
        self._root = root
        #: file names are ``<part_prefix>-N.parquet`` (an incremental run names its own)
        self._part_prefix = part_prefix
        self._schema = schema.with_metadata(metadata or {})
        self._row_group_rows = row_group_rows
        self._max_buffered = max_buffered_rows
        self._max_bytes = max_buffered_bytes
        self._max_open = max_open_files
        self._fs = pafs.LocalFileSystem()
        self._dictionary = (
            dictionary_columns if isinstance(dictionary_columns, bool) else list(dictionary_columns)
        )
        self._compression = _codecs(self._schema, self._dictionary, compression, light_compression)
        self._file_buffer = file_buffer_bytes
        self._close_threads = close_threads
        #: least recently appended first
        self._buffers: OrderedDict[Partition, _Buffer] = OrderedDict()
        self._writers: OrderedDict[Partition, _File] = OrderedDict()
        self._next_part: dict[Partition, int] = {}
        #: flushed buffers not yet written, in flush order
        self._pending: deque[tuple[Partition, _Buffer]] = deque()
        self._pending_rows = 0
        self._buffered = 0
        #: bytes of the chunk tables the buffers pin (what the flush decisions look at)
        self._held_bytes = 0
        #: the same, counting the pending buffers too (the memory really held)
        self._pinned_bytes = 0
        self.rows_written = 0
        self.files: list[Path] = []

    @property
    def held_bytes(self) -> int:
        """Bytes of the chunk tables pinned by buffered or pending rows (at most
        ``max_buffered_bytes``)."""
        return self._pinned_bytes

    def write(self, partition: Partition, table: pa.Table) -> None:
        """Queue ``table`` (same schema as the writer) for ``partition``."""
        self.write_runs(table, [(partition, 0, table.num_rows)])

    def write_runs(self, table: pa.Table, runs: Sequence[tuple[Partition, int, int]]) -> None:
        """Queue the rows of ``table``: ``(partition, first row, row count)`` for each run."""
        runs = [run for run in runs if run[2] > 0]
        if not runs:
            return
        block = _Block(table.nbytes, len(runs), len(runs))
        self._held_bytes += block.nbytes
        self._pinned_bytes += block.nbytes
        added = 0
        for partition, first, count in runs:
            buf = self._buffers.get(partition)
            if buf is None:
                buf = self._buffers[partition] = _Buffer()
            else:
                self._buffers.move_to_end(partition)
            buf.tables.append(table.slice(first, count))
            buf.blocks.append(block)
            buf.rows += count
            self._buffered += count
            added += count
            if buf.rows >= self._row_group_rows:
                self._flush(partition)
        if self._buffered > self._max_buffered or self._held_bytes > self._max_bytes:
            # least recently appended first, down to half the caps: in time-ordered input
            # these are finished days; the partitions still filling up keep their rows
            while self._buffers and (
                self._buffered > self._max_buffered // 2 or self._held_bytes > self._max_bytes // 2
            ):
                self._flush(next(iter(self._buffers)))
        self._write_pending(2 * added)
        while self._pending and (
            self._pinned_bytes > self._max_bytes
            or self._buffered + self._pending_rows > self._max_buffered
        ):
            self._write_pending(1)  # never more than the caps, pending rows included

    def _writer_for(self, partition: Partition) -> pq.ParquetWriter:
        file = self._writers.get(partition)
        if file is not None:
            self._writers.move_to_end(partition)
            return file.writer
        while len(self._writers) >= self._max_open:
            self._writers.popitem(last=False)[1].close()
        day, cc = partition
        folder = self._root / f"date={day}" / f"cc={cc}"
        if partition not in self._next_part:
            folder.mkdir(parents=True, exist_ok=True)
        number = self._next_part.get(partition, 0)
        self._next_part[partition] = number + 1
        path = folder / f"{self._part_prefix}-{number}.parquet"
        # a buffered stream: one write() per 16 KiB instead of a write() and an lseek() per
        # page (a tenth of the writer's time went to those syscalls with small files)
        sink = self._fs.open_output_stream(str(path), buffer_size=self._file_buffer or None)
        writer = pq.ParquetWriter(
            sink, self._schema, compression=self._compression, use_dictionary=self._dictionary
        )
        self._writers[partition] = _File(writer, sink)
        self.files.append(path)
        return writer

    def _flush(self, partition: Partition) -> None:
        """Detach ``partition``'s buffer: ``_write_pending`` writes its rows."""
        buf = self._buffers.pop(partition, None)
        if buf is None or not buf.rows:
            return
        self._buffered -= buf.rows
        for block in buf.blocks:
            block.live -= 1
            if block.live == 0:
                self._held_bytes -= block.nbytes
        self._pending.append((partition, buf))
        self._pending_rows += buf.rows

    def _write_pending(self, rows: int | None = None) -> None:
        """Write the pending buffers in flush order: whole buffers, until at least ``rows``
        rows are written (all of them if None)."""
        written = 0
        while self._pending and (rows is None or written < rows):
            partition, buf = self._pending.popleft()
            self._write_buffers(self._writer_for(partition), [buf])
            self._written(buf)
            written += buf.rows

    def _write_buffers(self, writer: pq.ParquetWriter, bufs: Sequence[_Buffer]) -> None:
        """Write the rows of ``bufs`` (one partition's, in order) with ``writer``."""
        for buf in bufs:
            table = pa.concat_tables(buf.tables).replace_schema_metadata(self._schema.metadata)
            writer.write_table(table, row_group_size=self._row_group_rows)

    def _written(self, buf: _Buffer) -> None:
        for block in buf.blocks:
            block.unwritten -= 1
            if block.unwritten == 0:
                self._pinned_bytes -= block.nbytes
        self.rows_written += buf.rows
        self._pending_rows -= buf.rows

    def close(self) -> None:
        """Flush every buffer and close every file.

        With ``close_threads`` > 1 the partitions still buffered are written that many at a
        time (Arrow encodes and compresses without the GIL): at the end of a run the workers
        are done and this last flush, a few seconds, was the only busy core. Each partition's
        rows go to its file in the same order, and the files are opened in the same order, so
        the dataset is the same as with one thread.
        """
        for part in list(self._buffers):
            self._flush(part)
        if self._close_threads > 1 and len(self._pending) > 1:
            with ThreadPoolExecutor(self._close_threads) as pool:
                while self._pending:
                    # the files are looked up in flush order, as one thread does, so the
                    # same ones are opened and closed; at most max_open_files partitions at
                    # a time, so that opening one never closes another of the same batch
                    batch: dict[Partition, tuple[pq.ParquetWriter, list[_Buffer]]] = {}
                    while self._pending and (
                        len(batch) < self._max_open or self._pending[0][0] in batch
                    ):
                        partition, buf = self._pending.popleft()
                        writer = self._writer_for(partition)
                        batch.setdefault(partition, (writer, []))[1].append(buf)
                    jobs = list(batch.values())
                    for _ in pool.map(lambda job: self._write_buffers(*job), jobs):
                        pass
                    for _writer, bufs in jobs:
                        for buf in bufs:
                            self._written(buf)
        self._write_pending()
        while self._writers:
            self._writers.popitem(last=False)[1].close()

    def __enter__(self) -> PartitionedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
