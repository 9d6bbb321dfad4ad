"""A real small filesystem for the full-disk tests: a tmpfs mounted for the test (root, as CI).

No mock: the writes fail with the kernel's own ``ENOSPC`` when the tmpfs is full, and
:func:`grow` remounts it larger, as a volunteer freeing space would.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"48k"``) mounted on ``path`` for the ``with`` block."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs ({mounted.stderr.strip()}): this test needs root "
            "(CI runs as root)",
            pytrace=False,
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)
