"""The roller: moves journaled measurements into the store's ``.jsonl.gz`` parts.

A roll starts when the journal holds ``max_bytes`` or its oldest line is ``max_age`` seconds old
(and once more at shutdown). It takes every journal row present (``seq <= upto``, recorded with
the roll's number before anything is written), writes one part per (hour, country, test) group,
named after the roll (:func:`probe.collector.layout.part_key`), then, in one transaction, drops
the rows and marks the roll done. Crash-safety follows from the order:

* killed before the parts are all written: the roll is not done, its rows are still in the
  journal; the next start redoes the same roll (same rows, same names) and overwrites any part
  it had written with the same bytes (gzip without a timestamp, lines in receive order);
* killed after the parts and before the transaction: the same, nothing is lost or doubled;
* killed after: done.

A part holds at most one roll's worth of lines, so parts are bounded by size and by time.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from probe.collector import layout
from probe.collector.journal import Journal
from probe.collector.storage import ObjectStore


@dataclass(frozen=True, slots=True)
class RollPolicy:
    #: roll once the journal holds this many bytes of lines ...
    max_bytes: int = 64 << 20
    #: ... or once its oldest line is this old (seconds)
    max_age: float = 300.0
    #: how long a measurement's digest is remembered for deduplication (seconds)
    dedup_seconds: float = 30 * 86400.0
    #: how often the roller looks at the journal (seconds)
    check_every: float = 1.0


def gzip_lines(lines: Iterable[bytes], *, level: int = 6) -> bytes:
    """The lines gzip'd deterministically (no timestamp or name in the header)."""
    return gzip.compress(b"".join(lines), compresslevel=level, mtime=0)


def roll_once(
    journal: Journal,
    store: ObjectStore,
    *,
    collector_id: int,
    policy: RollPolicy,
    now: float,
) -> list[str] | None:
    """One roll (an unfinished one first); the part keys written, None if nothing to roll."""
    roll = journal.open_roll(now=now)
    if roll is None:
        return None
    keys: list[str] = []
    for bucket in journal.buckets(roll):
        key = layout.part_key(bucket, collector_id=collector_id, counter=roll.roll)
        store.put(key, gzip_lines(journal.lines(roll, bucket)))
        keys.append(key)
    journal.finish_roll(roll, keys, forget_before=now - policy.dedup_seconds)
    return keys


def due(journal: Journal, policy: RollPolicy, *, now: float) -> bool:
    backlog = journal.backlog()
    if not backlog.rows:
        return False
    age = now - backlog.oldest if backlog.oldest is not None else 0.0
    return backlog.bytes >= policy.max_bytes or age >= policy.max_age


class Roller:
    """Runs :func:`roll_once` in a worker thread whenever a roll is due."""

    def __init__(
        self,
        journal_path: Path,
        store: ObjectStore,
        *,
        collector_id: int,
        policy: RollPolicy,
        clock: Callable[[], float] = time.time,
        events: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._journal = Journal(journal_path)  # the roller's own connection
        self._store = store
        self._collector_id = collector_id
        self._policy = policy
        self._clock = clock
        #: receives one record per roll and per failed roll (the operator's log)
        self._events = events
        self.parts_written = 0
        self.failures = 0
        self.last_error: str | None = None

    def _roll(self, *, force: bool) -> list[str] | None:
        now = self._clock()
        pending = self._journal.unfinished_roll()  # a crash left it: redo it first
        if not force and not pending and not due(self._journal, self._policy, now=now):
            return None
        keys = roll_once(
            self._journal,
            self._store,
            collector_id=self._collector_id,
            policy=self._policy,
            now=now,
        )
        if keys and self._events is not None:
            self._events({"ts": round(now, 3), "event": "rolled", "parts": keys})
        return keys

    async def roll_now(self) -> list[str]:
        """Roll everything journaled so far (an unfinished roll first); the keys written."""
        keys: list[str] = []
        while True:
            more = await trio.to_thread.run_sync(lambda: self._roll(force=True))
            if not more:
                return keys
            keys += more
            self.parts_written += len(more)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Roll when due, until cancelled; a failing store is retried (the journal keeps all)."""
        task_status.started()
        while True:
            try:
                keys = await trio.to_thread.run_sync(lambda: self._roll(force=False))
            except Exception as exc:  # the store is down: keep the journal, try again later
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if self._events is not None:
                    self._events(
                        {
                            "ts": round(self._clock(), 3),
                            "event": "roll_failed",
                            "error": self.last_error,
                            "failures": self.failures,
                        }
                    )
                keys = None
            if keys:
                self.parts_written += len(keys)
                self.last_error = None
            await trio.sleep(self._policy.check_every)

    def close(self) -> None:
        self._journal.close()
