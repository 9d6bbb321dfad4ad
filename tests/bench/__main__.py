"""`make bench`: every benchmark, figures printed (never asserted).

    .venv/bin/python -m tests.bench [--quick]

``--quick`` shrinks the inputs (for a smoke run); without it the sizes are the issues' figures.
"""

from __future__ import annotations

import sys

from tests.bench import (
    bench_batch,
    bench_collector,
    bench_core,
    bench_hostile,
    bench_packet,
    bench_verdicts,
)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    print("== verdicts: agreement with OONI and the adjudicated corpus ==", flush=True)
    bench_verdicts.main(["--quick"] if quick else [])
    print("\n== probe core (lab) ==", flush=True)
    core_args = ["--n", "200", "--rss-lines", "5000"] if quick else []
    rc = bench_core.main(core_args)
    print("\n== packet-level test (lab) ==", flush=True)
    rc = bench_packet.main(["--rtt-ms", "0"] if quick else []) or rc
    print("\n== hostile suite (worst case per target) and the privacy step ==", flush=True)
    rc = rc or bench_hostile.main(["--quick"] if quick else [])
    print("\n== batch analysis ==", flush=True)
    batch_args = ["--n", "20000", "--oonidata-sample", "5000"] if quick else []
    rc = rc or bench_batch.main(batch_args)
    print("\n== collector and outbox ==", flush=True)
    collector_args = ["--n", "600", "--drain", "2000", "--run", "100"] if quick else []
    return rc or bench_collector.main(collector_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
