"""Stream OONI measurement files into bounded chunks of raw lines (no parsing here).

Accepted inputs: ``*.jsonl`` / ``*.jsonl.gz`` (one measurement per line, OONI's raw files),
``*.json`` / ``*.json.gz`` (one whole document, possibly pretty-printed, or a JSON array of
measurements; a ``.json`` file that holds JSONL is read as JSONL) and folders of them (walked
recursively in sorted order, so the output is deterministic). Every record keeps its source
name and 1-based line number: they make the deterministic ids and the error reports.

``.gz`` files are inflated with ISA-L (``isal.igzip``, same format, several times faster than
zlib) when the ``isal`` package is installed, else with the standard ``gzip`` module.
"""

from __future__ import annotations

import gzip
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

try:
    _GZIP: Any = importlib.import_module("isal.igzip")
except ImportError:  # pragma: no cover - optional speed-up
    _GZIP = gzip

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
    #: opens the file's content, already inflated (an object in a collector store,
    #: :mod:`probe.store`; ``path`` then names its format); None: the local file at ``path``
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


def _open(path: Path, opener: Callable[[], BinaryIO] | None = None) -> BinaryIO:
    if opener is not None:
        return opener()
    if path.name.endswith(".gz"):
        handle: BinaryIO = _GZIP.open(path, "rb")
        return handle
    return path.open("rb")


def iter_lines(
    path: Path, opener: Callable[[], BinaryIO] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for the non-blank lines of a JSONL(.gz) file, streaming."""
    number = 0
    rest = b""
    with _open(path, opener) as fh:
        while True:
            block = fh.read(_READ_BLOCK)
            if not block:
                break
            parts = block.split(b"\n")
            if rest:
                parts[0] = rest + parts[0]  # not rest + block: that copied every block once more
            rest = parts.pop()
            for part in parts:
                number += 1
                if part.strip():
                    yield number, part
    if rest.strip():
        yield number + 1, rest


def _json_document(
    path: Path, opener: Callable[[], BinaryIO] | None = None
) -> list[tuple[int, bytes]] | None:
    """A ``.json`` file holding one document (object or array): its records, else ``None``."""
    with _open(path, opener) as fh:
        data = fh.read()
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
    files: Iterable[InputFile], *, max_lines: int = 2000, max_bytes: int = 8 << 20
) -> Iterator[Chunk]:
    """Group the records of each file into chunks of at most ``max_lines`` / ``max_bytes``.

    A chunk never spans two files. Chunk indexes count up from 0 over the whole input.
    """
    index = 0
    for file in files:
        numbers: list[int] = []
        lines: list[bytes] = []
        size = 0
        for number, line in iter_records(file):
            numbers.append(number)
            lines.append(line)
            size += len(line)
            if len(lines) >= max_lines or size >= max_bytes:
                yield Chunk(index, file.source, tuple(numbers), tuple(lines))
                index += 1
                numbers, lines, size = [], [], 0
        if lines:
            yield Chunk(index, file.source, tuple(numbers), tuple(lines))
            index += 1
