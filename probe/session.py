"""One probe run: everything built once (SSL contexts, report id, fingerprints, the probe's own
addresses to scrub) and the per-target pipeline measure -> publish (probe.privacy) -> verdict
computed from the published copy.

Geolocation (:mod:`probe.geo`) runs before the session is created: its identity is already in
the config (so the report id, which embeds CC and ASN, is minted after it), its public address
joins the interface addresses in ``probe_ips`` and its annotations join every measurement's.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe import meta, registry, runfacts
from probe.analysis.fingerprints import Fingerprints
from probe.analysis.fingerprints import builtin as load_bundled_fingerprints
from probe.config import Config
from probe.context import RunContext
from probe.failures import Operation, classify
from probe.plan import AppWork, RunPlan
from probe.privacy import local_addresses, scrub_measurement
from probe.runner import Stats, run_targets
from probe.stages import dns, tls
from probe.targets import BadLine, Target

if TYPE_CHECKING:
    from probe.geo.locate import Geolocation

#: after a measurement is finished: measure more about it and return what to write in its place
#: (finished again when it changed); ``probe run --packet-level`` passes one
#: (:class:`probe.packet.follow.RunFollowUps`). It runs in the target's slot.
FollowUp = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Session:
    ctx: RunContext
    fingerprints: Fingerprints
    probe_ips: tuple[str, ...]

    @property
    def report_id(self) -> str:
        return self.ctx.report_id

    @property
    def config(self) -> Config:
        return self.ctx.config

    @classmethod
    def create(
        cls,
        config: Config,
        *,
        test_name: str = registry.WEB_CONNECTIVITY,
        geo: Geolocation | None = None,
    ) -> Session:
        now = datetime.now(UTC)
        annotations = meta.annotations()
        public_ips: tuple[str, ...] = ()
        if geo is not None:
            annotations.update(geo.annotations())
            public_ips = geo.scrub_addresses()
        verified = tls.make_ssl_context(ca_file=config.ca_file)  # loading the roots is costly
        ctx = RunContext(
            config=config,
            ssl_context=verified,
            diag_ssl_context=tls.make_ssl_context(verify=False),
            control_ssl_context=verified,
            udp_resolver=config.resolver or dns.system_resolver(),
            report_id=meta.make_report_id(
                test_name=test_name,
                cc=config.probe_cc if config.privacy.include_cc else "ZZ",
                asn=config.probe_asn if config.privacy.include_asn else "AS0",
                now=now,
                rng=random.SystemRandom(),
            ),
            test_start_time=meta.format_time(now),
            annotations=annotations,
        )
        return cls(
            ctx=ctx,
            fingerprints=load_bundled_fingerprints(),
            probe_ips=tuple(dict.fromkeys([*local_addresses(), *public_ips])),
        )

    def finish(
        self, msmt: dict[str, Any], *, notes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The published facts (probe.privacy), then the verdict keys of the test's pure
        analysis (looked up in the registry) computed from exactly those, so that anyone
        recomputes them from the line as written. ``notes`` (the target as given, removed
        credentials: :attr:`probe.targets.Target.notes`) go in ``test_keys.x_input`` first."""
        if notes:
            msmt.setdefault("test_keys", {})["x_input"] = notes
        msmt.setdefault("test_keys", {})
        published = scrub_measurement(
            msmt,
            probe_ips=self.probe_ips,
            include_ip=self.config.privacy.include_ip,
            decoded_cap=self.config.body_cap,
        )
        test = registry.lookup(published.get("test_name"))
        if test is not None:
            tk = published["test_keys"]
            try:
                tk.update(
                    test.analyze(
                        published,
                        fingerprints=self.fingerprints,
                        public_ranges=self.config.public_ranges,
                    )
                )
            except Exception as exc:  # the analysis is total; if it is not, keep the facts
                tk["x_analysis_failure"] = classify(exc, Operation.UNKNOWN).failure
        return published

    def continuing(self, report_id: str, test_start_time: str) -> Session:
        """The same session writing into an existing report (``--resume``)."""
        ctx = replace(self.ctx, report_id=report_id, test_start_time=test_start_time)
        return replace(self, ctx=ctx)

    async def run(
        self,
        plan: RunPlan,
        output: Path,
        *,
        follow_up: FollowUp | None = None,
        written: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> Stats:
        """Measure the plan's work into ``output`` (appending when the plan resumes), each
        finished measurement through ``follow_up`` when there is one; ``written(line)`` after
        each line is written (:func:`probe.runner.run_targets`). A URL run gets its run facts
        (:mod:`probe.runfacts`: the baseline, the NXDOMAIN canary)."""
        from probe.control.client import open_pool

        facts = None
        if not isinstance(plan.work, AppWork):
            facts = await runfacts.for_run(timeouts=self.config.timeouts, net=self.ctx.network)
        pool = open_pool(
            self.ctx.control_ssl_context, size=self.config.concurrency, network=self.ctx.network
        )
        async with pool:
            ctx = replace(self.ctx, control_pool=pool, run_facts=facts)
            return await replace(self, ctx=ctx)._run(plan, output, follow_up, written)

    async def _run(
        self,
        plan: RunPlan,
        output: Path,
        follow_up: FollowUp | None,
        written: Callable[[bytes], Awaitable[None]] | None,
    ) -> Stats:
        from probe.progress import LiveSink, LogSink
        from probe.runner import read_done_inputs

        done = read_done_inputs(output) if plan.resume else set()
        live = plan.live_progress and sys.stderr.isatty()
        sink = LiveSink() if live else LogSink()
        work = plan.work
        items: Iterator[Target | BadLine]
        if isinstance(work, AppWork):
            apps = work.by_key()

            def job(target: Target) -> tuple[registry.ExperimentSpec, Any]:
                app = apps[target.url]
                return registry.app_test(app.ooni_test), app

            items = work.items()
        else:
            url_test = registry.spec(work.test)

            def job(target: Target) -> tuple[registry.ExperimentSpec, Any]:
                return url_test, target.url

            items = work.items()

        async def measure(target: Target, release: Callable[[], None]) -> dict[str, Any]:
            test, subject = job(target)
            function = test.measure_function()
            # a follow-up is active work: then the target keeps its slot until it is done
            slot = release if follow_up is None else _keep
            msmt = await function(subject, ctx=self.ctx, test=test, release=slot)
            msmt = self.finish(msmt, notes=target.notes)
            return msmt if follow_up is None else await follow_up(msmt)

        def failed(target: Target, exc: Exception) -> dict[str, Any]:
            test, subject = job(target)
            msmt = test.failed_function()(subject, exc, ctx=self.ctx, test=test)
            return self.finish(msmt, notes=target.notes)

        return await run_targets(
            items,
            measure=measure,
            output=output,
            concurrency=self.config.concurrency,
            sink=sink,
            total=plan.total,
            done_inputs=done,
            on_error=failed,
            written=written,
        )


def _keep() -> None:
    """A ``release`` that keeps the slot (the runner frees it when the target is done)."""
