"""Durable file writes: atomic replace and directory fsync (the crash-safety primitives).

:func:`write_atomic` writes to a temporary file in the same folder, fsyncs it, renames it over
the target and fsyncs the folder: after a crash at any point the target holds either its old
content or the new one, never a mix, and once the call returns the new content survives a power
cut. Used by the config file, the collector's local store and the analysis state.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """fsync a directory, so that a rename or a new entry in it survives a crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, keep_mode: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably; raises OSError.

    A new file gets ``mode``; an existing one keeps its own (unless ``keep_mode`` is false).
    Missing parent folders are created (and made durable too).
    """
    missing = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        fsync_dir(folder.parent)
    if keep_mode:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
