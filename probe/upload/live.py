"""Uploading while a run measures: the few calls ``probe run`` makes.

::

    async with live_upload(publishing, ca_file=config.ca_file) as upload:  # None when off
        ...                                   # the writer task, for each measurement:
        fh.write(line); fh.flush()            # 1. the local line first
        if upload is not None:
            await upload.add(line)            # 2. the same bytes into the outbox, sent soon
    print(upload.summary())                   # "uploaded 40, waiting 2 (connection_refused)"

:func:`live_upload` opens the outbox, takes the sender lock (another process already sending?
then lines are only queued, and that process or the next run sends them) and runs a
:class:`~probe.upload.sender.Sender` in ``follow`` mode beside the run. On leaving the block it
lets the sender finish what waits for at most ``policy.request_timeout`` seconds; what is still
waiting then stays in the outbox for ``probe upload`` or the next run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from probe.consent import Publishing
from probe.upload.client import CollectorClient
from probe.upload.outbox import Outbox, OutboxStatus, default_path, sender_lock
from probe.upload.policy import UploadPolicy
from probe.upload.sender import DrainResult, Sender, summary_line


class LiveUpload:
    def __init__(self, outbox: Outbox, sender: Sender | None) -> None:
        self._outbox = outbox
        self._sender = sender
        self._lock = trio.Lock()
        self.result: DrainResult | None = None
        self.status: OutboxStatus | None = None

    async def add(self, line: bytes) -> None:
        """Queue one written line (durable when this returns) and wake the sender."""
        async with self._lock:
            await trio.to_thread.run_sync(partial(self._outbox.add, [line]))
        if self._sender is not None:
            self._sender.wake()

    def summary(self) -> str:
        """One line for the run's summary (after the block)."""
        status = self.status or self._outbox.status()
        text = summary_line(self.result, status)
        if self._sender is None:
            text += " (another process is uploading)"
        return text


@asynccontextmanager
async def live_upload(
    publishing: Publishing,
    *,
    outbox_path: Path | None = None,
    policy: UploadPolicy | None = None,
    ca_file: Path | None = None,
) -> AsyncIterator[LiveUpload | None]:
    """Upload each added line as soon as possible; None when uploads are off."""
    if not publishing.uploads or publishing.collector_url is None:
        yield None
        return
    policy = policy or UploadPolicy()
    path = outbox_path or default_path()
    outbox = Outbox(path)
    try:
        with sender_lock(path) as sending:
            if not sending:
                live = LiveUpload(outbox, None)
                yield live
                live.status = outbox.status()
                return
            async with CollectorClient(
                publishing.collector_url, policy=policy, proxy=publishing.proxy, ca_file=ca_file
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
                        nursery.cancel_scope.deadline = trio.current_time() + policy.request_timeout
                live.status = outbox.status()
                if live.result is None:
                    live.result = sender.result
    finally:
        outbox.close()
