"""The output file: whole lines only, nothing lost on a crash, a full disk or a resume.

A run appends one JSON line per measurement to one file. This module owns that file:

* :class:`LineWriter` appends each line with ``os.write`` on a descriptor opened ``O_APPEND``
  and knows the file's size after the last whole line. When a write fails (``ENOSPC`` on a
  full disk, ``EIO``, ``/dev/full``...) it truncates the file back to that size, so the file
  still ends on a whole line, and raises :class:`WriteError` carrying how many lines are safe
  in it. Nothing else is tried: the run stops and says how to resume.
* :func:`repair` runs before a resume: a last line without its newline (the process was
  killed, the machine lost power or the disk filled while it was written) is moved into a side
  file ``<output>.torn`` and cut from the output, so the next line never lands glued to it and
  that target is measured again.
* :func:`read_resume_state` reads what a previous run left: the inputs already measured, and
  the report (``report_id`` and ``test_start_time``) the resumed run continues, so one file
  holds one report.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

#: suffix of the side file that receives a cut-off last line
TORN_SUFFIX = ".torn"
_TAIL_BLOCK = 1 << 16


class WriteError(Exception):
    """A line could not be written; the file ends on the last whole line."""

    def __init__(self, path: Path, error: OSError, *, safe_lines: int) -> None:
        reason = error.strerror or os.strerror(error.errno or errno.EIO)
        super().__init__(f"cannot write to {path}: {reason}")
        self.path = path
        self.error = error
        self.reason = reason
        self.safe_lines = safe_lines


@dataclass
class LineWriter:
    """Appends whole lines to ``path``; use as a context manager."""

    path: Path
    #: whole lines in the file (counted when it was opened, then one per line written)
    lines: int = 0
    _fd: int = -1
    _size: int = 0

    def __enter__(self) -> LineWriter:
        if self.path.is_file():
            self.lines = count_lines(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise WriteError(self.path, exc, safe_lines=self.lines) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass  # /dev/full, pipes: nothing to sync; the data is already written
            os.close(self._fd)
            self._fd = -1

    def write(self, line: bytes) -> None:
        """Append ``line`` (ending in a newline) whole, or raise :class:`WriteError` with the
        file cut back to its previous size."""
        view = memoryview(line)
        written = 0
        try:
            while written < len(line):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            self._rollback()
            raise WriteError(self.path, exc, safe_lines=self.lines) from exc
        self._size += len(line)
        self.lines += 1

    def _rollback(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # not a regular file, or the disk refuses even that: repair() does it later


def count_lines(path: Path) -> int:
    """Newline-terminated lines in ``path`` (0 if it cannot be read)."""
    total = 0
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                total += block.count(b"\n")
    except OSError:
        return 0
    return total


@dataclass(frozen=True, slots=True)
class Repair:
    """What :func:`repair` did: ``moved`` bytes of a cut-off last line went to ``side_file``."""

    moved: int = 0
    side_file: Path | None = None


def repair(path: Path) -> Repair:
    """Move a last line that lacks its newline into ``<path>.torn`` and cut it from ``path``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Repair()
    if size == 0:
        return Repair()
    with path.open("r+b") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return Repair()
        end = _last_newline_end(fh, size)
        fh.seek(end)
        tail = fh.read()
        side = path.with_name(path.name + TORN_SUFFIX)
        with side.open("ab") as out:
            out.write(tail + b"\n")
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())
    return Repair(moved=len(tail), side_file=side)


def _last_newline_end(fh: BinaryIO, size: int) -> int:
    """Offset just after the last newline (0 when there is none), reading backwards."""
    pos = size
    while pos > 0:
        start = max(0, pos - _TAIL_BLOCK)
        fh.seek(start)
        block = fh.read(pos - start)
        found = block.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        pos = start
    return 0


@dataclass
class ResumeState:
    """What an output file already holds."""

    #: inputs measured (web URLs; ``app:<name>`` for the app tests, which have no input)
    done: set[str] = field(default_factory=set)
    #: the report the file belongs to (of its first measurement), or "" for an empty file
    report_id: str = ""
    test_start_time: str = ""
    test_name: str = ""
    probe_cc: str = ""
    probe_asn: str = ""
    lines: int = 0
    #: whole lines that are not a JSON measurement (their targets are measured again)
    bad_lines: int = 0


def read_resume_state(path: Path) -> ResumeState:
    """Read every line of a previous output (streaming); missing file: an empty state."""
    state = ResumeState()
    if not path.exists():
        return state
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                state.bad_lines += 1  # a torn tail that repair() did not get to
                continue
            state.lines += 1
            try:
                msmt = orjson.loads(raw)
            except orjson.JSONDecodeError:
                state.bad_lines += 1
                continue
            if not isinstance(msmt, dict):
                state.bad_lines += 1
                continue
            _note(state, msmt)
    return state


def _note(state: ResumeState, msmt: dict[str, Any]) -> None:
    value = msmt.get("input")
    tk = msmt.get("test_keys")
    app = tk.get("x_app") if isinstance(tk, dict) else None
    if isinstance(value, str):
        state.done.add(value)
    if isinstance(app, str):  # OONI's app tests have no input: key them by app
        state.done.add(f"app:{app}")
    if not state.report_id and isinstance(msmt.get("report_id"), str):
        state.report_id = msmt["report_id"]
        for name in ("test_start_time", "test_name", "probe_cc", "probe_asn"):
            value = msmt.get(name)
            setattr(state, name, value if isinstance(value, str) else "")
