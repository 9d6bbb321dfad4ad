"""The outbox: measurements written locally and not yet acknowledged by the collector.

One SQLite database (``$XDG_DATA_HOME/censorprobe/outbox.sqlite3``) in WAL mode with
``synchronous=FULL``: every commit is fsync'd, a torn write is detected and rolled back when the
database is opened again, so the outbox survives ``kill -9`` (and a power cut) at any instant.

* ``queue``: the lines waiting, each with the exact bytes of the results file's line, its
  report id and the report template (for ``POST /report``), and the attempts so far.
* ``known``: the SHA-256 of every line ever added: adding the same results file twice queues
  nothing new (``probe upload results/*.jsonl`` can be run any number of times).
* ``rejected``: lines the collector refused for good (a 4xx other than 429): kept with the
  reason, never silently dropped, never retried automatically.
* ``counters``: how many lines were acknowledged in total.

An acknowledged line leaves ``queue`` in the same transaction that counts it (in batches: see
:mod:`probe.upload.sender`). A crash after the collector answered and before that commit sends
the line again next time; the collector recognises it and stores it once.

Several processes may add to the outbox at once (SQLite serialises the writers). Only one sends
at a time: :meth:`Outbox.sender_lock` is an exclusive ``flock`` on ``outbox.sqlite3.lock``; a
second sender (a ``probe upload`` while a ``probe run`` uploads) finds it taken and leaves the
lines to the first.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from probe.durable_db import open_durable, release_space, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY,
    added REAL NOT NULL,
    report_id TEXT NOT NULL,
    template TEXT NOT NULL,
    line BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS known (digest BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    added REAL NOT NULL,
    rejected REAL NOT NULL,
    report_id TEXT NOT NULL,
    line BLOB NOT NULL,
    error TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: the report template's keys (probe-cli's ``NewReportTemplate``), read from each measurement
TEMPLATE_KEYS = (
    "probe_asn",
    "probe_cc",
    "software_name",
    "software_version",
    "test_name",
    "test_start_time",
    "test_version",
)


class NotAMeasurement(ValueError):
    """A line that is not one JSON measurement with the keys a report needs."""


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    report_id: str
    template: dict[str, Any]
    line: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    waiting: int
    uploaded: int
    rejected: int
    #: the last error recorded on a waiting line, if any
    last_error: str | None


def default_path() -> Path:
    from probe.configfile import data_dir

    return data_dir() / "outbox.sqlite3"


def template_of(line: bytes) -> tuple[str, dict[str, Any]]:
    """(report_id, open-report template) of a measurement line; raises NotAMeasurement."""
    try:
        msmt = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise NotAMeasurement(f"not JSON: {exc}") from None
    if not isinstance(msmt, dict):
        raise NotAMeasurement("not a JSON object")
    missing = [k for k in ("report_id", *TEMPLATE_KEYS) if not isinstance(msmt.get(k), str)]
    if missing:
        raise NotAMeasurement(f"missing {', '.join(missing)}")
    template = {"data_format_version": "0.2.0", "format": "json"}
    template.update({k: msmt[k] for k in TEMPLATE_KEYS})
    return str(msmt["report_id"]), template


class Outbox:
    """One connection to the outbox (use one per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_durable(path, SCHEMA)
        os.chmod(path, 0o600)  # measurements not yet published: the volunteer's eyes only

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)

    def add(self, lines: Iterable[bytes], *, now: float | None = None) -> int:
        """Queue these measurement lines (exact bytes, newline optional) in one transaction;
        lines added before are skipped. Returns how many were new. Raises NotAMeasurement
        (nothing is added then)."""
        when = time.time() if now is None else now
        rows = []
        for raw in lines:
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            report_id, template = template_of(line)
            rows.append((hashlib.sha256(line).digest(), report_id, template, line))
        added = 0
        with self._transaction() as db:
            for digest, report_id, template, line in rows:
                cursor = db.execute("INSERT OR IGNORE INTO known (digest) VALUES (?)", (digest,))
                if cursor.rowcount:
                    db.execute(
                        "INSERT INTO queue (added, report_id, template, line) VALUES (?,?,?,?)",
                        (when, report_id, orjson.dumps(template).decode(), line),
                    )
                    added += 1
        return added

    def waiting(self, *, after: int = 0, limit: int = 256) -> list[Item]:
        """Waiting lines with ``seq > after``, oldest first."""
        rows = self._db.execute(
            "SELECT seq, report_id, template, line, attempts FROM queue WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            Item(int(seq), str(rid), orjson.loads(template), bytes(line), int(attempts))
            for seq, rid, template, line, attempts in rows
        ]

    def acknowledged(self, seqs: Sequence[int]) -> None:
        """These lines reached the collector: remove them, count them (one transaction)."""
        if not seqs:
            return
        with self._transaction() as db:
            removed = 0
            for seq in seqs:
                removed += db.execute("DELETE FROM queue WHERE seq = ?", (seq,)).rowcount
            db.execute(
                "INSERT INTO counters (name, value) VALUES ('uploaded', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (removed,),
            )
        release_space(self._db)

    def failed(self, seqs: Sequence[int], error: str) -> None:
        """An attempt at these lines failed (they stay queued)."""
        with self._transaction() as db:
            for seq in seqs:
                db.execute(
                    "UPDATE queue SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                    (error[:500], seq),
                )

    def reject(self, seq: int, error: str, *, now: float | None = None) -> None:
        """The collector refused this line for good: move it to ``rejected``."""
        when = time.time() if now is None else now
        with self._transaction() as db:
            db.execute(
                "INSERT INTO rejected (seq, added, rejected, report_id, line, error) "
                "SELECT seq, added, ?, report_id, line, ? FROM queue WHERE seq = ?",
                (when, error[:500], seq),
            )
            db.execute("DELETE FROM queue WHERE seq = ?", (seq,))

    def status(self) -> OutboxStatus:
        waiting = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()[0]
        rejected = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        row = self._db.execute("SELECT value FROM counters WHERE name = 'uploaded'").fetchone()
        error = self._db.execute(
            "SELECT last_error FROM queue WHERE last_error IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return OutboxStatus(
            waiting=int(waiting),
            uploaded=int(row[0]) if row else 0,
            rejected=int(rejected),
            last_error=error[0] if error else None,
        )

    def rejected_lines(self) -> list[tuple[bytes, str]]:
        rows = self._db.execute("SELECT line, error FROM rejected ORDER BY seq").fetchall()
        return [(bytes(line), str(error)) for line, error in rows]


@contextmanager
def sender_lock(path: Path) -> Iterator[bool]:
    """Try to become the outbox's only sender: yields True when this process holds the lock."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
