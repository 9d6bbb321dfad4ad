"""The sender: drains the outbox to the collector, in parallel, with backoff, crash-safe.

:func:`drain` reads the waiting lines oldest first and hands them to ``policy.parallel``
workers. For each line a worker makes sure the line's report is open on the collector (once per
report and drain, :meth:`~probe.upload.client.CollectorClient.open_report` with the report id
the line already carries), submits the line, and queues its acknowledgement; acknowledgements
are committed to the outbox ``policy.ack_batch`` at a time (one fsync), and always before
returning. The collector deduplicates, so the window between an answer and its commit costs at
most a few resubmissions after a crash, never a second copy in the store.

When the collector hands out another report id than the line's (OONI's collectors do), the line
is sent with that id in place of its own, the only change ever made to the bytes (the spec
requires the ids to match). A 4xx on a submission reopens the report once (the spec's answer to
a report the collector closed); a second 4xx rejects the line for good (kept in the outbox's
``rejected`` table). Retryable failures (network, timeout, 429, 5xx, a blockpage instead of an
answer) pause every worker for the backoff delay, then retry the same line; after
``policy.max_failures`` consecutive failures the drain stops and the lines wait for the next run.

``follow=True`` keeps draining as lines arrive (``wake()`` after adding) until ``stop()``: the
shape ``probe run`` uses, uploading each measurement as soon as it is written.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import orjson
import trio

from probe.upload.client import CollectorClient, UploadError
from probe.upload.outbox import Item, Outbox, OutboxStatus
from probe.upload.policy import UploadPolicy, backoff_delay

_T = TypeVar("_T")


@dataclass(slots=True)
class DrainResult:
    #: lines acknowledged by the collector during this drain
    uploaded: int = 0
    #: lines the collector refused for good during this drain
    rejected: int = 0
    #: lines left waiting in the outbox afterwards
    waiting: int = 0
    #: the drain stopped after ``max_failures`` consecutive failures
    gave_up: bool = False
    last_error: str | None = None


def with_report_id(line: bytes, old: str, new: str) -> bytes:
    """The line with its top-level ``report_id`` replaced (the only edit uploads ever make)."""
    if old == new:
        return line
    msmt = orjson.loads(line)
    msmt["report_id"] = new
    return orjson.dumps(msmt, option=orjson.OPT_APPEND_NEWLINE)


class Sender:
    """One drain session over an outbox and a collector client."""

    def __init__(
        self,
        outbox_path: Path,
        client: CollectorClient,
        *,
        policy: UploadPolicy,
        rng: random.Random | None = None,
        progress: Callable[[DrainResult], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = Outbox(outbox_path)
        self._client = client
        self._policy = policy
        self._rng = rng or random.Random()
        self._progress = progress
        self._clock = clock
        self._db_lock = trio.Lock()
        self._reports: dict[str, str] = {}
        self._opening: dict[str, trio.Lock] = {}
        self._acks: list[int] = []
        self._failures = 0
        self._paused_until = 0.0
        self._wakeup = trio.Event()
        self._stopping = False
        self.result = DrainResult()

    # --- the outbox, one call at a time, off the event loop --------------------------------

    async def _db(self, fn: Callable[[], _T]) -> _T:
        async with self._db_lock:
            return await trio.to_thread.run_sync(fn)

    async def status(self) -> OutboxStatus:
        return await self._db(self._outbox.status)

    async def _flush_acks(self) -> None:
        if not self._acks:
            return
        seqs, self._acks = self._acks, []
        await self._db(partial(self._outbox.acknowledged, seqs))

    # --- following a run --------------------------------------------------------------------

    def wake(self) -> None:
        """New lines were added to the outbox (``follow`` mode)."""
        self._wakeup.set()

    def stop(self) -> None:
        """Finish what is waiting, then return (``follow`` mode)."""
        self._stopping = True
        self._wakeup.set()

    @property
    def failing(self) -> bool:
        """The last attempt failed (the collector is unreachable, blocked or refusing): a run
        that ends does not wait for it."""
        return self._failures > 0 or self.result.gave_up

    # --- the drain --------------------------------------------------------------------------

    async def drain(self, *, follow: bool = False) -> DrainResult:
        """Send the waiting lines; returns when none is left (and, with ``follow``, after
        :meth:`stop`), or when the collector failed ``max_failures`` times in a row."""
        send, receive = trio.open_memory_channel[Item](0)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._feed, send, follow, nursery.cancel_scope)
                for _ in range(max(self._policy.parallel, 1)):
                    nursery.start_soon(self._work, receive.clone(), nursery.cancel_scope)
                await receive.aclose()
        finally:
            with trio.CancelScope(shield=True):
                await self._flush_acks()
                await self._close_reports()
                status = await self.status()
                self.result.waiting = status.waiting
                self._outbox.close()
        return self.result

    async def _feed(
        self, send: trio.MemorySendChannel[Item], follow: bool, scope: trio.CancelScope
    ) -> None:
        last = 0
        async with send:
            while True:
                self._wakeup = trio.Event()
                items = await self._db(partial(self._outbox.waiting, after=last, limit=256))
                for item in items:
                    await send.send(item)
                    last = item.seq
                if items:
                    continue
                if not follow or self._stopping:
                    return
                await self._wakeup.wait()

    async def _work(
        self, receive: trio.MemoryReceiveChannel[Item], scope: trio.CancelScope
    ) -> None:
        async with receive:
            async for item in receive:
                await self._send_one(item, scope)
                if len(self._acks) >= self._policy.ack_batch:
                    await self._flush_acks()
        await self._flush_acks()

    async def _send_one(self, item: Item, scope: trio.CancelScope) -> None:
        reopened = False
        while True:
            await self._wait_pause()
            try:
                report_id = await self._report_for(item)
                line = with_report_id(item.line, item.report_id, report_id)
                await self._client.submit(report_id, line)
            except UploadError as exc:
                if exc.retryable:
                    await self._failed(item, exc, scope)
                    continue
                if exc.status is not None and not reopened and item.report_id in self._reports:
                    reopened = True  # the collector may have closed the report: reopen once
                    del self._reports[item.report_id]
                    continue
                await self._reject(item, exc.message)
                return
            self._failures = 0
            self._acks.append(item.seq)
            self.result.uploaded += 1
            if self._progress is not None:
                self._progress(self.result)
            return

    async def _reject(self, item: Item, error: str) -> None:
        await self._db(partial(self._outbox.reject, item.seq, error))
        self.result.rejected += 1
        self.result.last_error = error

    async def _report_for(self, item: Item) -> str:
        known = self._reports.get(item.report_id)
        if known is not None:
            return known
        lock = self._opening.setdefault(item.report_id, trio.Lock())
        async with lock:  # one open per report, however many workers hold its lines
            known = self._reports.get(item.report_id)
            if known is None:
                known = await self._client.open_report(item.template, own_report_id=item.report_id)
                self._reports[item.report_id] = known
            return known

    async def _failed(self, item: Item, exc: UploadError, scope: trio.CancelScope) -> None:
        self._failures += 1
        self.result.last_error = exc.message
        await self._db(partial(self._outbox.failed, [item.seq], exc.message))
        if self._failures >= self._policy.max_failures:
            self.result.gave_up = True
            scope.cancel()
            await trio.lowlevel.checkpoint()
            return
        delay = backoff_delay(
            self._failures, policy=self._policy, rng=self._rng, retry_after=exc.retry_after
        )
        self._paused_until = max(self._paused_until, self._clock() + delay)

    async def _wait_pause(self) -> None:
        while (left := self._paused_until - self._clock()) > 0:
            await trio.sleep(left)

    async def _close_reports(self) -> None:
        with trio.move_on_after(self._policy.request_timeout):
            for report_id in self._reports.values():
                try:
                    await self._client.close_report(report_id)
                except UploadError:
                    return  # best effort: reports are closed for tidiness, not for safety


async def drain(
    outbox_path: Path,
    client: CollectorClient,
    *,
    policy: UploadPolicy,
    rng: random.Random | None = None,
    progress: Callable[[DrainResult], None] | None = None,
) -> DrainResult:
    """Send every waiting line once (see :class:`Sender`)."""
    return await Sender(outbox_path, client, policy=policy, rng=rng, progress=progress).drain()


def summary_line(result: DrainResult | None, status: OutboxStatus) -> str:
    """``uploaded 12, waiting 3 (connection_refused)`` for the run summary and ``probe upload``."""
    parts = []
    if result is not None:
        parts.append(f"uploaded {result.uploaded}")
    parts.append(f"waiting {status.waiting}")
    if status.rejected:
        parts.append(f"rejected {status.rejected} (see `probe upload --status`)")
    text = ", ".join(parts)
    error = result.last_error if result is not None else status.last_error
    if status.waiting and error:
        text += f" (last error: {error})"
    return text
