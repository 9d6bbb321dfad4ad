"""Run targets through the per-target step that records the run's facts (inside cp-client).

    python -m tests.lab.runfacts_run --lab STATE/lab.json --output OUT.jsonl \\
        [--canary-suffix nx.lab.test] [--large-object HOST=URL ...] \\
        --phase URL [URL ...] [--phase URL [URL ...] ...]

This is the loop ``probe run`` gets in the second wave, kept to the few lines a test needs:
one :class:`probe.session.Session` (SSL contexts, verdicts, scrubbing of the volunteer's
addresses), one :class:`probe.runfacts.RunFacts` with the NXDOMAIN canary resolved once, and
for every target :func:`probe.followup.measure_with_run_facts` then ``Session.finish``. The
phases run one after the other, the targets of a phase concurrently; every measurement is
appended to ``--output`` as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import trio

from probe.config import Config, Geolocate, parse_ranges
from probe.followup import measure_with_run_facts
from probe.runfacts import RunFacts, nxdomain_canary
from probe.session import Session


def config_from_lab(info: dict[str, Any]) -> Config:
    return Config(
        control_url=info["control_url"],
        ca_file=Path(info["ca_file"]),
        resolver=info["resolver"],
        public_ranges=parse_ranges(",".join(info["public_ranges"])),
        geolocate=Geolocate(enabled=False),
    )


async def run(
    session: Session,
    phases: list[list[str]],
    output: Path,
    *,
    canary_suffix: str,
    large_objects: dict[str, str],
) -> None:
    timeouts = session.config.timeouts
    facts = RunFacts(canary=await nxdomain_canary(timeouts=timeouts, suffix=canary_suffix))
    with output.open("a", encoding="utf-8") as out:

        async def one(url: str) -> None:
            m = await measure_with_run_facts(
                url, ctx=session.ctx, facts=facts, large_objects=large_objects
            )
            out.write(json.dumps(session.finish(m)) + "\n")
            out.flush()

        for urls in phases:
            async with trio.open_nursery() as nursery:
                for url in urls:
                    nursery.start_soon(one, url)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab.runfacts_run")
    parser.add_argument("--lab", type=Path, required=True, help="the lab's lab.json")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--canary-suffix", default="com")
    parser.add_argument("--large-object", action="append", default=[], metavar="HOST=URL")
    parser.add_argument("--phase", action="append", nargs="+", required=True, metavar="URL")
    args = parser.parse_args(argv)
    info = json.loads(args.lab.read_text(encoding="utf-8"))
    session = Session.create(config_from_lab(info))
    large = dict(item.split("=", 1) for item in args.large_object)
    trio.run(
        lambda: run(
            session, args.phase, args.output, canary_suffix=args.canary_suffix, large_objects=large
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
