"""Uploading while a run measures: the few calls ``probe run`` makes.

::

    async with live_upload(publishing, ca_file=config.ca_file) as upload:  # None when off
        ...                                   # the writer task, for each measurement:
        fh.write(line); fh.flush()            # 1. the local line first
        if upload is not None:
            await upload.add(line)            # 2. the same bytes into the outbox, sent soon
    print(upload.summary(results))            # "uploaded 40, waiting 2 (last error: ...)"

:func:`live_upload` opens the outbox, takes the sender lock (another process already sending?
then lines are only queued, and that process or the next run sends them) and runs a
:class:`~probe.upload.sender.Sender` in ``follow`` mode beside the run. On leaving the block it
lets the sender finish what waits for at most ``policy.request_timeout`` seconds (not at all
when the collector is failing: the lines wait for the next run or ``probe upload``).

Uploads on but no collector configured (the volunteer left the URL empty in ``probe onboard``):
the lines are queued and nothing is sent; the summary says so, once. The upload never stops
the run: the local line is already written, so an outbox that cannot be written (a full disk)
only means that line is not queued (the summary names the results file to queue it from later
with ``probe upload FILE``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from probe.consent import Publishing
from probe.upload.client import CollectorClient
from probe.upload.outbox import NotAMeasurement, Outbox, OutboxStatus, default_path, sender_lock
from probe.upload.policy import UploadPolicy
from probe.upload.sender import DrainResult, Sender, summary_line


class LiveUpload:
    """The run's handle on the outbox (and on the sender, when this process sends)."""

    def __init__(self, outbox: Outbox, sender: Sender | None, *, collector: bool = True) -> None:
        self._outbox = outbox
        self._sender = sender
        self._collector = collector
        self._lock = trio.Lock()
        self.result: DrainResult | None = None
        self.status: OutboxStatus | None = None
        #: lines not queued: the first outbox failure (later lines are not tried), refusals
        self.failure: str | None = None
        self.not_queued = 0

    async def add(self, line: bytes) -> None:
        """Queue one written line (durable when this returns) and wake the sender. Never
        raises: a line that cannot be queued is counted (it is in the results file)."""
        if self.failure is not None:
            self.not_queued += 1
            return
        try:
            async with self._lock:
                await trio.to_thread.run_sync(partial(self._outbox.add, [line]))
        except NotAMeasurement:
            self.not_queued += 1  # not a measurement a collector takes (no report id)
            return
        except (sqlite3.Error, OSError) as exc:
            self.failure = f"the outbox failed ({exc})"
            self.not_queued += 1
            return
        if self._sender is not None:
            self._sender.wake()

    def summary(self, results: Path | str) -> str:
        """One line for the run's summary (after the block)."""
        status = self.status or self._outbox.status()
        if not self._collector:
            text = (
                f"no collector configured: {status.waiting} measurements wait in the outbox "
                "(`probe onboard --collector URL` sets one, then `probe upload` sends them)"
            )
        else:
            text = summary_line(self.result, status)
            if self._sender is None:
                text += " (another process is uploading)"
        if self.not_queued:
            text += (
                f"; {self.not_queued} not queued"
                + (f": {self.failure}" if self.failure else "")
                + f" (`probe upload {results}` queues them)"
            )
        return text


@asynccontextmanager
async def live_upload(
    publishing: Publishing,
    *,
    outbox_path: Path | None = None,
    policy: UploadPolicy | None = None,
    ca_file: Path | None = None,
) -> AsyncIterator[LiveUpload | None]:
    """Queue each added line and upload it as soon as possible; None when uploads are off."""
    if not publishing.upload:
        yield None
        return
    policy = policy or UploadPolicy()
    path = outbox_path or default_path()
    outbox = Outbox(path)
    try:
        collector = publishing.collector_url
        with sender_lock(path) as sending:
            if collector is None or not sending:
                live = LiveUpload(outbox, None, collector=collector is not None)
                yield live
                live.status = outbox.status()
                return
            async with CollectorClient(
                collector, policy=policy, proxy=publishing.proxy, ca_file=ca_file
            ) as client:
                sender = Sender(path, client, policy=policy)
                live = LiveUpload(outbox, sender)
                async with trio.open_nursery() as nursery:

                    async def follow() -> None:
                        live.result = await sender.drain(follow=True)

                    nursery.start_soon(follow)
                    try:
                        yield live
                    finally:
                        sender.stop()
                        grace = 0.0 if sender.failing else policy.request_timeout
                        nursery.cancel_scope.deadline = trio.current_time() + grace
                live.status = outbox.status()
                if live.result is None:
                    live.result = sender.result
    finally:
        outbox.close()
