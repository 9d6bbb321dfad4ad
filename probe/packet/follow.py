"""The follow-up of one web measurement: trace what its verdict asks for, embed the facts.

:func:`follow_up` is shared: ``probe packet`` runs it over measurement files,
``probe run --packet-level`` (:class:`RunFollowUps`, the session's follow-up hook) on each web
measurement right after its verdict. Follow-ups are serialised (one at a time): the test's rate
limit is per target, and the traces of concurrent follow-ups would add up and blur each other's
replies. Without raw sockets the caller prints :data:`probe.packet.privilege.NOTICE` once and
never gets here.

The ``censor_trace`` measurements are a report of their own (OONI writes one report per test:
``report_id`` names the test), so ``probe run --packet-level`` writes them to a file of their own
beside the web report (:func:`trace_report_path`); each names the web measurement that asked
for it (``x_target.measurement``) and the web measurement names their report
(``x_packet.report_id``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import trio

from probe.envelope import TestIdentity
from probe.packet.measure import TEST, PacketContext, embed, failed_measurement, measure_packet
from probe.packet.target import from_measurement
from probe.writer import LineWriter, WriteError

#: what the session does to every measurement before it is written: verdict keys, scrubbing
Finish = Callable[[dict[str, Any]], dict[str, Any]]

TRACE_REPORT_SUFFIX = ".censor_trace.jsonl"


async def follow_up(
    web: Mapping[str, Any],
    *,
    ctx: PacketContext,
    test: TestIdentity = TEST,
    extra_dns_servers: Sequence[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(a copy of ``web`` with ``test_keys.x_packet`` when anything was traced, the
    ``censor_trace`` measurements: facts only). A trace that raises becomes a failed
    measurement (``x_failure``) and adds nothing to ``x_packet``. No verdict is computed here:
    the caller finishes both kinds of measurement as any other (the registry's analyses)."""
    traced: list[dict[str, Any]] = []
    usable: list[dict[str, Any]] = []
    for target in from_measurement(web, extra_dns_servers=extra_dns_servers):
        try:
            msmt = await measure_packet(target, ctx=ctx, test=test)
        except Exception as exc:  # a bug or a refused socket must not lose the web measurement
            msmt = failed_measurement(target, exc, ctx=ctx, test=test)
        else:
            usable.append(msmt)
        traced.append(msmt)
    return embed(web, usable), traced


def trace_report_path(web_output: Path) -> Path:
    """Where ``probe run --packet-level`` writes the ``censor_trace`` report of a run whose web
    report is ``web_output``: ``<name>.censor_trace.jsonl`` beside it."""
    return web_output.with_name(web_output.name.removesuffix(".jsonl") + TRACE_REPORT_SUFFIX)


class RunFollowUps:
    """``probe run --packet-level``: the session's follow-up hook.

    Called with each finished web measurement; a measurement whose verdict asks for nothing
    (:func:`probe.packet.target.from_measurement`) is returned as it is. Otherwise its traces
    run (one follow-up at a time across the run), each ``censor_trace`` measurement is finished
    by ``finish_trace`` (the packet report's session: its report id, its verdict, scrubbing)
    and appended to the file ``report`` (created with the first one; whole lines,
    :class:`probe.writer.LineWriter`), and the web measurement with ``x_packet`` is finished
    again by ``finish_web``: its verdict recomputed with the packet facts. When the report
    cannot be written (a full disk) the follow-ups stop there (``write_error``) and the web
    measurements go on unchanged. :meth:`close` closes the report. ``written`` (set by
    ``probe run`` once its upload is open: the outbox's ``add``) gets each report line once it
    is in the file, as the web report's lines are: the traces are uploaded with them.
    """

    def __init__(
        self, *, ctx: PacketContext, finish_web: Finish, finish_trace: Finish, report: Path
    ) -> None:
        self._ctx = ctx
        self._finish_web = finish_web
        self._finish_trace = finish_trace
        self.report = report
        self._writer: LineWriter | None = None
        self._lock = trio.Lock()
        #: web measurements followed up, censor_trace measurements written
        self.followed = 0
        self.written = 0
        #: set when the report could not be written: no follow-up since
        self.write_error: WriteError | None = None
        #: each written line's bytes go here too (the upload's outbox), when set
        self.written_hook: Callable[[bytes], Awaitable[None]] | None = None

    async def __call__(self, web: dict[str, Any]) -> dict[str, Any]:
        if self.write_error is not None or not from_measurement(web):
            return web
        async with self._lock:
            merged, traced = await follow_up(web, ctx=self._ctx)
        self.followed += 1
        lines: list[bytes] = []
        try:
            for msmt in traced:
                lines.append(self._write(self._finish_trace(msmt)))
        except WriteError as exc:
            self.write_error = exc
        if self.written_hook is not None:  # only lines that are whole in the file
            for line in lines:
                await self.written_hook(line)
        if self.write_error is not None:
            return web
        if "x_packet" not in merged.get("test_keys", {}):
            return web
        return self._finish_web(merged)

    def _write(self, msmt: dict[str, Any]) -> bytes:
        if self._writer is None:
            self._writer = LineWriter(self.report).__enter__()
        line = orjson.dumps(msmt, option=orjson.OPT_APPEND_NEWLINE)
        self._writer.write(line)
        self.written += 1
        return line

    def close(self) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None
