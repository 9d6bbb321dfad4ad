"""Group commit: many concurrent submissions, one journal transaction (one fsync), then the acks.

Each request handler hands its entry to :meth:`Committer.submit` and waits. One task takes
everything queued, journals it in one transaction in a worker thread (the fsync does not block
the event loop) and wakes the handlers with their uids; what arrives meanwhile forms the next
batch. A lone uploader pays one fsync per measurement, a hundred share one. No handler answers
before the transaction that holds its measurement has committed: an acknowledged measurement
is on disk. If the journal fails (disk full), every handler of that batch gets
:class:`JournalUnavailable` (the client sees 503 and retries later).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from probe.collector.journal import Entry, Journal, Stored


class JournalUnavailable(Exception):
    """The journal could not commit (the measurement was not stored)."""


@dataclass(slots=True)
class _Waiter:
    entry: Entry
    done: trio.Event = field(default_factory=trio.Event)
    stored: Stored | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class CommitStats:
    batches: int = 0
    entries: int = 0
    duplicates: int = 0
    largest_batch: int = 0
    failures: int = 0


class Committer:
    """Owns the journal's writing connection; run :meth:`run` in a nursery."""

    def __init__(
        self,
        journal_path: Path,
        *,
        max_batch: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._journal = Journal(journal_path)
        self._max_batch = max_batch
        self._clock = clock
        self._queue: list[_Waiter] = []
        self._wakeup = trio.Event()
        self.stats = CommitStats()

    async def submit(self, entry: Entry) -> Stored:
        """Journal ``entry``; returns once it is durable. Raises :class:`JournalUnavailable`."""
        waiter = _Waiter(entry)
        self._queue.append(waiter)
        self._wakeup.set()
        await waiter.done.wait()
        if waiter.stored is None:
            raise JournalUnavailable(str(waiter.error)) from waiter.error
        return waiter.stored

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit(batch)

    async def _commit(self, batch: list[_Waiter]) -> None:
        entries = [w.entry for w in batch]
        try:
            # not cancellable: a commit that started finishes, so its acks stay truthful
            stored = await trio.to_thread.run_sync(
                lambda: self._journal.append(entries, received=self._clock())
            )
        except Exception as exc:
            self.stats.failures += 1
            for waiter in batch:
                waiter.error = exc
                waiter.done.set()
            return
        self.stats.batches += 1
        self.stats.entries += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for waiter, result in zip(batch, stored, strict=True):
            waiter.stored = result
            if not result.new:
                self.stats.duplicates += 1
            waiter.done.set()

    def close(self) -> None:
        self._journal.close()
