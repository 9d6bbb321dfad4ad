"""One running collector: the committer, the roller and the ASGI app under hypercorn (trio).

:func:`run_collector` starts the committer and the roller (whose first look redoes a roll a
crash left unfinished), then serves; ``task_status`` reports the bound URLs and the app.
``log`` gets one record per request, ``events`` one per roll and per failed roll (a store that
is down: acknowledgements go on, the journal grows, the roller retries). When cancelled (``probe
collector serve`` cancels on SIGINT/SIGTERM) it stops serving first, then rolls what the
journal holds into parts (bounded by ``final_roll_seconds``; what does not make it stays in the
journal for the next start) and closes the databases. Nothing depends on that last step for
durability: after ``kill -9`` the journal has every acknowledged measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from probe.collector.app import CollectorApp, CollectorLimits, LogFn
from probe.collector.committer import Committer
from probe.collector.roller import Roller, RollPolicy
from probe.collector.storage import ObjectStore


@dataclass(frozen=True)
class CollectorSettings:
    store: ObjectStore
    journal: Path
    collector_id: int = 1
    policy: RollPolicy = field(default_factory=RollPolicy)
    limits: CollectorLimits = field(default_factory=CollectorLimits)
    #: at shutdown, how long the last roll may take (seconds)
    final_roll_seconds: float = 30.0


@dataclass
class Running:
    """What :func:`run_collector` reports once it serves."""

    urls: list[str]
    app: CollectorApp
    roller: Roller


async def run_collector(
    settings: CollectorSettings,
    hypercorn_config: Any,
    *,
    log: LogFn | None = None,
    events: Callable[[dict[str, Any]], None] | None = None,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    from probe.control.server import serve

    committer = Committer(settings.journal)
    roller = Roller(
        settings.journal,
        settings.store,
        collector_id=settings.collector_id,
        policy=settings.policy,
        events=events,
    )
    app = CollectorApp(
        committer, collector_id=settings.collector_id, limits=settings.limits, log=log
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            await nursery.start(roller.run)
            urls = await nursery.start(serve, app, hypercorn_config)
            task_status.started(Running(urls=list(urls), app=app, roller=roller))
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(settings.final_roll_seconds):
            try:
                await roller.roll_now()
            except Exception as exc:  # the journal keeps what could not be rolled
                roller.last_error = f"{type(exc).__name__}: {exc}"[:300]
        committer.close()
        roller.close()
