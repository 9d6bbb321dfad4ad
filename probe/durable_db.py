"""SQLite as a crash-safe queue: the connection settings and the transaction helper shared by
the collector's journal and the probe's outbox.

WAL mode with ``synchronous=FULL`` fsyncs the log at every commit (a committed transaction
survives ``kill -9`` and a power cut), checksums detect a torn write, and the database recovers
by itself when opened again. ``auto_vacuum=INCREMENTAL`` (set before the first table) lets the
space of deleted rows go back to the file system; callers run ``PRAGMA incremental_vacuum``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_durable(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode, fsync'd at each commit, with ``schema`` applied.

    The connection is in autocommit mode: use :func:`transaction` for atomic groups. It may be
    used from another thread than the one that opened it, one thread at a time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 60000")
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        db.close()
        raise sqlite3.OperationalError(f"{path}: cannot use SQLite's WAL mode (got {mode})")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA journal_size_limit = 67108864")
    db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (the commit is the fsync), rolled back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def release_space(db: sqlite3.Connection) -> None:
    """Give the pages of deleted rows back to the file system."""
    db.execute("PRAGMA incremental_vacuum").fetchall()
