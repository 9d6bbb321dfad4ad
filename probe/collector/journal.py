"""The collector's write-ahead journal and dedup index: one SQLite database.

Why SQLite: the journal must survive ``kill -9`` (and a power cut) at any instant without losing
an acknowledged measurement or storing one twice. SQLite in WAL mode with ``synchronous=FULL``
fsyncs its log at every commit, detects torn writes with checksums and recovers by itself when
opened again; it also gives the dedup index (an indexed table) and the roll bookkeeping in the
same atomic transactions. A hand-written log would need all of that again.

Tables:

* ``journal(seq, received, uid, bucket, size, line)``: measurements acknowledged but not yet
  in a ``.jsonl.gz`` part; ``line`` is the exact line the part will hold.
* ``seen(digest, uid, received)``: the dedup index (SHA-512 of the canonical measurement ->
  the uid it got), kept ``dedup_seconds`` after receipt (the outbox retries within days).
* ``rolls(roll, upto, started, done, parts)``: each roll moves the journal rows with ``seq <=
  upto`` into parts named after ``roll``; a roll not ``done`` is redone identically after a
  crash (same rows, same names), so it is idempotent.

Threads: :meth:`append` runs in the committer's worker thread, the roll methods in the roller's;
each side has its own :class:`Journal` (connection), and WAL lets them overlap. Everything here
blocks; callers run it with ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from probe.durable_db import open_durable, release_space, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    received REAL NOT NULL,
    uid TEXT NOT NULL,
    bucket TEXT NOT NULL,
    size INTEGER NOT NULL,
    line BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_bucket ON journal (bucket, seq);
CREATE TABLE IF NOT EXISTS seen (
    digest BLOB PRIMARY KEY,
    uid TEXT NOT NULL,
    received REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_received ON seen (received);
CREATE TABLE IF NOT EXISTS rolls (
    roll INTEGER PRIMARY KEY AUTOINCREMENT,
    upto INTEGER NOT NULL,
    started REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    parts TEXT NOT NULL DEFAULT '[]'
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One validated measurement to journal."""

    digest: bytes
    uid: str
    bucket: str
    line: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """What :meth:`Journal.append` did with an entry: its uid, and whether it was new."""

    uid: str
    new: bool


@dataclass(frozen=True, slots=True)
class Roll:
    roll: int
    upto: int


@dataclass(frozen=True, slots=True)
class Backlog:
    rows: int
    bytes: int
    oldest: float | None


class Journal:
    """One connection to the journal database (use one per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_durable(path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)

    # --- the committer's side ---------------------------------------------------------------

    def append(self, entries: Sequence[Entry], *, received: float) -> list[Stored]:
        """Journal ``entries`` in one transaction (one fsync); duplicates are not stored again.

        Returns, in order, the uid each entry is known by: its own when new, the first one's
        when the same measurement was received before (or earlier in this batch).
        """
        out: list[Stored] = []
        batch: dict[bytes, str] = {}
        with self._transaction() as db:
            for entry in entries:
                uid = batch.get(entry.digest)
                if uid is None:
                    row = db.execute(
                        "SELECT uid FROM seen WHERE digest = ?", (entry.digest,)
                    ).fetchone()
                    uid = row[0] if row else None
                if uid is not None:
                    out.append(Stored(uid, False))
                    continue
                db.execute(
                    "INSERT INTO seen (digest, uid, received) VALUES (?, ?, ?)",
                    (entry.digest, entry.uid, received),
                )
                db.execute(
                    "INSERT INTO journal (received, uid, bucket, size, line) VALUES (?,?,?,?,?)",
                    (received, entry.uid, entry.bucket, len(entry.line), entry.line),
                )
                batch[entry.digest] = entry.uid
                out.append(Stored(entry.uid, True))
        return out

    # --- the roller's side ------------------------------------------------------------------

    def backlog(self) -> Backlog:
        rows, size, oldest = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(received) FROM journal"
        ).fetchone()
        return Backlog(int(rows), int(size), oldest)

    def open_roll(self, *, now: float) -> Roll | None:
        """The unfinished roll (after a crash), else a new one over every journal row, else
        None when the journal is empty."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT roll, upto FROM rolls WHERE done = 0 ORDER BY roll LIMIT 1"
            ).fetchone()
            if row is None:
                (upto,) = db.execute("SELECT MAX(seq) FROM journal").fetchone()
                if upto is not None:
                    cursor = db.execute(
                        "INSERT INTO rolls (upto, started) VALUES (?, ?)", (upto, now)
                    )
                    row = (cursor.lastrowid, upto)
        return None if row is None else Roll(int(row[0]), int(row[1]))

    def unfinished_roll(self) -> bool:
        """A roll was started and not finished (the process died meanwhile)."""
        row = self._db.execute("SELECT 1 FROM rolls WHERE done = 0 LIMIT 1").fetchone()
        return row is not None

    def buckets(self, roll: Roll) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT bucket FROM journal WHERE seq <= ? ORDER BY bucket", (roll.upto,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    def lines(self, roll: Roll, bucket: str) -> Iterator[bytes]:
        """The lines of ``bucket`` in ``roll``, in the order they were received."""
        cursor = self._db.execute(
            "SELECT line FROM journal WHERE bucket = ? AND seq <= ? ORDER BY seq",
            (bucket, roll.upto),
        )
        for (line,) in cursor:
            yield bytes(line)

    def finish_roll(self, roll: Roll, parts: Sequence[str], *, forget_before: float) -> None:
        """The roll's parts are stored: drop its rows, record its parts, prune the dedup index
        of entries received before ``forget_before`` (one transaction)."""
        with self._transaction() as db:
            db.execute("DELETE FROM journal WHERE seq <= ?", (roll.upto,))
            db.execute(
                "UPDATE rolls SET done = 1, parts = ? WHERE roll = ?",
                (json.dumps(list(parts)), roll.roll),
            )
            db.execute("DELETE FROM seen WHERE received < ?", (forget_before,))
        release_space(self._db)

    def rolled_parts(self) -> list[str]:
        """Every part key the finished rolls wrote, oldest first."""
        rows = self._db.execute("SELECT parts FROM rolls WHERE done = 1 ORDER BY roll")
        return [key for (text,) in rows for key in json.loads(text)]

    def count_seen(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
