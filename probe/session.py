"""One probe run: everything built once (SSL contexts, report id, fingerprints, the probe's own
addresses to scrub) and the per-target pipeline measure -> verdict -> scrub.

Geolocation (:mod:`probe.geo`) runs before the session is created: its identity is already in
the config (so the report id, which embeds CC and ASN, is minted after it), its public address
joins the interface addresses in ``probe_ips`` and its annotations join every measurement's.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe import meta
from probe.analysis import analyze
from probe.analysis.fingerprints import Fingerprints
from probe.analysis.fingerprints import builtin as load_bundled_fingerprints
from probe.config import Config
from probe.experiment import TEST_NAME, RunContext, measure_web
from probe.privacy import local_addresses, scrub_measurement
from probe.runner import Stats, run_targets
from probe.stages import dns, tls
from probe.targets import BadLine, Target, select

if TYPE_CHECKING:
    from probe.geo.locate import Geolocation


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
        cls, config: Config, *, test_name: str = TEST_NAME, geo: Geolocation | None = None
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

    def finish(self, msmt: dict[str, Any]) -> dict[str, Any]:
        """The published facts (probe.privacy), then verdict keys computed from exactly those,
        so that anyone recomputes them from the line as written."""
        msmt.setdefault("test_keys", {})
        published = scrub_measurement(
            msmt,
            probe_ips=self.probe_ips,
            include_ip=self.config.privacy.include_ip,
            decoded_cap=self.config.body_cap,
        )
        tk = published["test_keys"]
        try:
            if published.get("test_name") == TEST_NAME:
                verdict = analyze(
                    published,
                    fingerprints=self.fingerprints,
                    public_ranges=self.config.public_ranges,
                )
            else:
                from probe.apps.verdict import analyze_app

                verdict = analyze_app(published)
            tk.update(verdict)
        except Exception as exc:  # the analysis is total; if it is not, keep the facts
            from probe.failures import Operation, classify

            tk["x_analysis_failure"] = classify(exc, Operation.UNKNOWN)
        return published

    def error_measurement(self, url: str, exc: Exception) -> dict[str, Any]:
        """A whole measurement for a target whose pipeline raised: the failure is the fact."""
        from probe.experiment import failed_measurement

        return self.finish(failed_measurement(url, exc, ctx=self.ctx))

    async def measure_url(
        self,
        url: str,
        release: Callable[[], None] | None = None,
        *,
        notes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        msmt = await measure_web(url, ctx=self.ctx, release=release)
        if notes:  # the URL as given, removed credentials (probe.inputs.TargetURL.notes)
            msmt.setdefault("test_keys", {})["x_input"] = notes
        return self.finish(msmt)

    def continuing(self, report_id: str, test_start_time: str) -> Session:
        """The same session writing into an existing report (``--resume``)."""
        ctx = replace(self.ctx, report_id=report_id, test_start_time=test_start_time)
        return replace(self, ctx=ctx)

    async def run(self, plan: Any, output: Path, args: argparse.Namespace) -> Stats:
        from probe.control.client import open_pool

        pool = open_pool(self.ctx.control_ssl_context, size=self.config.concurrency)
        async with pool:
            session = replace(self, ctx=replace(self.ctx, control_pool=pool))
            return await session._run(plan, output, args)

    async def _run(self, plan: Any, output: Path, args: argparse.Namespace) -> Stats:
        from probe.progress import LiveSink, LogSink
        from probe.runner import read_done_inputs

        done = read_done_inputs(output) if plan.resume else set()
        sink = LiveSink() if sys.stderr.isatty() and not args.no_progress else LogSink()
        if plan.apps:
            from probe.apps.runner import app_items, measure_app_item

            async def measure(target: Target, release: Callable[[], None]) -> dict[str, Any]:
                app = await measure_app_item(target.url, session=self, apps=plan.apps)
                return self.finish(app)

            items: Iterator[Target | BadLine] = app_items(plan.apps)
            total: int | None = len(plan.apps)
        else:
            from probe.commands.run import _iter_sources

            async def measure(target: Target, release: Callable[[], None]) -> dict[str, Any]:
                return await self.measure_url(target.url, release, notes=target.notes)

            items = select(_iter_sources(plan.sources), category=args.category, limit=args.limit)
            total = plan.total
        return await run_targets(
            items,
            measure=measure,
            output=output,
            concurrency=self.config.concurrency,
            sink=sink,
            total=total,
            done_inputs=done,
            on_error=self.error_measurement,
        )
