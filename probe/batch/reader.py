"""Stream OONI measurement files into bounded chunks of raw lines (no parsing here).

Accepted inputs: ``*.jsonl`` / ``*.jsonl.gz`` (one measurement per line, OONI's raw files),
``*.json`` / ``*.json.gz`` (one whole document, possibly pretty-printed, or a JSON array of
measurements; a ``.json`` file that holds JSONL is read as JSONL) and folders of them (walked
recursively in sorted order, so the output is deterministic). Every record keeps its source
name and 1-based line number: they make the deterministic ids and the error reports.

``.gz`` files are inflated as a stream (concatenated members too) with ISA-L (``isal.isal_zlib``,
same format, several times faster than zlib) when the ``isal`` package is installed, else with
the standard ``zlib``, at most :data:`_READ_BLOCK` bytes of output at a time (a compression bomb
among the inputs costs time, never memory).

A file that cannot be read to its end (a ``.gz`` cut off or not gzip at all, corrupt deflate
data, an I/O error) does not stop the batch: every whole line before the damage is analysed,
the damage is reported through ``on_unreadable`` with the file, the uncompressed offset and the
last whole line, and the next file is read.
"""

from __future__ import annotations

import importlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

try:
    _ZLIB: Any = importlib.import_module("isal.isal_zlib")
except ImportError:  # pragma: no cover - optional speed-up
    _ZLIB = zlib
#: what a corrupt deflate stream raises (zlib's, or ISA-L's own class)
_ZLIB_ERRORS: tuple[type[Exception], ...] = tuple({zlib.error, getattr(_ZLIB, "error", zlib.error)})
_GZIP_WBITS = 31

#: file suffixes we read; anything else in a folder is ignored (README.md, .tsv, ...)
SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")

_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """A batch of raw records from one file: ``lines[i]`` was at line ``line_numbers[i]``."""

    index: int
    source: str
    line_numbers: tuple[int, ...]
    lines: tuple[bytes, ...]


@dataclass(frozen=True)
class InputFile:
    """A file to read and the stable name used for it in ids and reports."""

    path: Path
    source: str
    #: opens the file's bytes as stored (an object in a collector store, :mod:`probe.store`;
    #: ``path`` then names its format: a ``.gz`` one is inflated and checked as a local one is);
    #: None: the local file at ``path``
    opener: Callable[[], BinaryIO] | None = None


def discover(paths: Iterable[str | Path]) -> list[InputFile]:
    """Expand the given paths (files or folders) into the input files, in a stable order.

    Raises ``FileNotFoundError`` for a path that does not exist. The ``source`` name of a file
    inside a folder is ``<folder name>/<relative path>``, of a file given directly its name, so
    ids do not depend on where the data sits on disk.
    """
    found: list[InputFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(SUFFIXES):
                        full = Path(root) / name
                        rel = full.relative_to(path).as_posix()
                        found.append(InputFile(full, f"{path.resolve().name}/{rel}"))
        elif path.is_file():
            found.append(InputFile(path, path.name))
        else:
            raise FileNotFoundError(str(path))
    return found


class UnreadableInput(Exception):
    """A file could not be read to its end; the lines before ``offset`` were read."""

    def __init__(self, reason: str, *, offset: int, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        #: uncompressed bytes read before the damage
        self.offset = offset
        #: the last whole line read (0: none)
        self.line = line

    def __str__(self) -> str:
        return f"{self.reason} at uncompressed offset {self.offset} (after line {self.line})"


class _Damaged(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


def _blocks(path: Path, opener: Callable[[], BinaryIO] | None = None) -> Iterator[bytes]:
    """The file's (uncompressed) bytes in blocks; raises :class:`_Damaged` where they end.

    ``opener`` gives the bytes as stored (a collector store's part, gzip'd like a local
    ``.gz``); without it the local file at ``path`` is read. Either way the stream is read
    forward only (an S3 stream cannot seek)."""
    offset = 0
    try:
        with opener() if opener is not None else path.open("rb") as fh:
            if not path.name.endswith(".gz"):
                while block := fh.read(_READ_BLOCK):
                    offset += len(block)
                    yield block
                return
            for block in _inflate(fh):
                offset += len(block)
                yield block
    except _Damaged as exc:
        raise _Damaged(exc.reason, offset) from None
    except OSError as exc:
        raise _Damaged(f"read error: {exc.strerror or exc}", offset) from None


def _inflate(fh: Any) -> Iterator[bytes]:
    """Inflate gzip members one after the other, at most ``_READ_BLOCK`` bytes at a time."""
    inflater = _ZLIB.decompressobj(_GZIP_WBITS)
    fed = False  # whether the current member has started
    block = b""  # the magic first, read forward (no seek: a stream from S3 cannot)
    while len(block) < 2 and (more := fh.read(2 - len(block))):
        block += more
    if block and block != b"\x1f\x8b":
        raise _Damaged("not a gzip file", 0)
    while block:
        data = block
        while data:
            fed = True
            try:
                out = inflater.decompress(data, _READ_BLOCK)
            except _ZLIB_ERRORS as exc:
                raise _Damaged(f"not gzip or corrupt gzip data ({exc})", 0) from None
            if out:
                yield out
            if inflater.eof:
                data = inflater.unused_data
                inflater, fed = _ZLIB.decompressobj(_GZIP_WBITS), False
            else:
                data = inflater.unconsumed_tail
        block = fh.read(_READ_BLOCK)
    while fed and not inflater.eof:  # the input is over: drain what the member still holds
        try:
            out = inflater.decompress(b"", _READ_BLOCK)
        except _ZLIB_ERRORS as exc:
            raise _Damaged(f"corrupt gzip data ({exc})", 0) from None
        if out:
            yield out
            continue
        if not inflater.eof:
            raise _Damaged("gzip stream cut off (no end-of-stream marker)", 0)


def iter_lines(
    path: Path, opener: Callable[[], BinaryIO] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for the non-blank lines of a JSONL(.gz) file, streaming.

    Raises :class:`UnreadableInput` after the last whole line when the file is damaged (the
    cut line is not yielded)."""
    number = 0
    rest = b""
    try:
        for block in _blocks(path, opener):
            parts = block.split(b"\n")
            if rest:
                parts[0] = rest + parts[0]  # not rest + block: that copied every block once more
            rest = parts.pop()
            for part in parts:
                number += 1
                if part.strip():
                    yield number, part
    except _Damaged as exc:
        raise UnreadableInput(exc.reason, offset=exc.offset - len(rest), line=number) from None
    if rest.strip():
        yield number + 1, rest


def _json_document(
    path: Path, opener: Callable[[], BinaryIO] | None = None
) -> list[tuple[int, bytes]] | None:
    """A ``.json`` file holding one document (object or array): its records, else ``None``."""
    try:
        data = b"".join(_blocks(path, opener))
    except _Damaged as exc:
        raise UnreadableInput(exc.reason, offset=exc.offset, line=0) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # not one document: read it as JSONL (bad lines get reported there)
    if isinstance(doc, list):
        return [(i + 1, orjson.dumps(item)) for i, item in enumerate(doc)]
    return [(1, data)]


def iter_records(file: InputFile) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_record)`` for one input file."""
    if file.path.name.endswith((".json", ".json.gz")):
        records = _json_document(file.path, file.opener)
        if records is not None:
            yield from records
            return
    yield from iter_lines(file.path, file.opener)


def iter_chunks(
    files: Iterable[InputFile],
    *,
    max_lines: int = 2000,
    max_bytes: int = 8 << 20,
    on_unreadable: Callable[[InputFile, UnreadableInput], None] | None = None,
) -> Iterator[Chunk]:
    """Group the records of each file into chunks of at most ``max_lines`` / ``max_bytes``.

    A chunk never spans two files. Chunk indexes count up from 0 over the whole input. A damaged
    file ends at its last whole line: ``on_unreadable(file, error)`` hears of it (without it
    the error is raised) and the next file is read.
    """
    index = 0
    for file in files:
        numbers: list[int] = []
        lines: list[bytes] = []
        size = 0
        damage: UnreadableInput | None = None
        try:
            for number, line in iter_records(file):
                numbers.append(number)
                lines.append(line)
                size += len(line)
                if len(lines) >= max_lines or size >= max_bytes:
                    yield Chunk(index, file.source, tuple(numbers), tuple(lines))
                    index += 1
                    numbers, lines, size = [], [], 0
        except UnreadableInput as exc:
            if on_unreadable is None:
                raise
            damage = exc
        if lines:
            yield Chunk(index, file.source, tuple(numbers), tuple(lines))
            index += 1
        if damage is not None and on_unreadable is not None:
            on_unreadable(file, damage)
