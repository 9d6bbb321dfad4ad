"""`make bench` for the batch pipeline: measurements/s and peak memory, with oonidata as anchor.

    .venv/bin/python -m tests.bench.bench_batch [--n 1000000] [--workers 2] [--oonidata-sample N]
        [--fingerprints builtin|none|shared]

1. Generates a synthetic JSONL.gz of ``--n`` measurements (probe.batch.synth: templates from
   the real samples in ../shared) and a second one of ``n/4``, to show memory is flat.
2. Runs ``probe.batch.pipeline.run`` (read + re-classify + flatten + Parquet write) on each in a
   fresh subprocess with ``--workers`` processes and the fingerprints ``probe analyze`` uses by
   default (our bundled set; ``--fingerprints none`` for none); reports rate, per-measurement
   cost and peak RSS of the main process and of the largest worker.
   When the analysis is compiled (probe.native), the small set is run once more on the
   sources (``CENSORPROBE_PURE=1``) and the speed-up printed; and once more with OONI's and
   Censored Planet's fingerprints from ../shared (``shared``: about 3,000, as `probe
   fingerprints update` fetches them), the set a researcher would use.
3. Runs OONI's ``oonidata.dataclient.load_measurement`` in .venv-ref on the first
   ``--oonidata-sample`` lines of the same file (read + orjson parse + load; one process), the
   anchor figure, right after each run of ours on the large set. Prints ratios.
4. The large set is run ``--runs`` times (2 by default), each followed by its anchor: the
   speed of this shared machine drifts by 10-20% over minutes, so one run says little about
   the next; every run is printed, then the lowest and highest rates and ratios.
Nothing is asserted: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from probe import native

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
REF_PYTHON = REPO / ".venv-ref" / "bin" / "python"

_OONIDATA = r"""
import gzip, json, sys, time
import orjson
from oonidata.dataclient import load_measurement
path, limit = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter(); n = 0; failed = 0; t_load = 0.0
with gzip.open(path, "rb") as fh:
    for line in fh:
        msmt = orjson.loads(line)
        t1 = time.perf_counter()
        try:
            load_measurement(msmt=msmt)
        except Exception:
            failed += 1
        t_load += time.perf_counter() - t1
        n += 1
        if n >= limit:
            break
print(json.dumps({"n": n, "failed": failed, "seconds": time.perf_counter() - t0,
                  "load_seconds": t_load}))
"""


def _child(args: argparse.Namespace) -> int:
    from probe.analysis.fingerprints import builtin
    from probe.batch.pipeline import run
    from probe.batch.step import StepOptions

    fps = builtin() if args.fingerprints != "none" else None
    if args.fingerprints == "shared":  # what `probe fingerprints update` downloads
        from probe.analysis.fingerprints import load_directory

        fps = load_directory(SHARED / "data" / "fingerprints").merged(builtin())
    options = StepOptions(fingerprints=fps)
    summary = run([args.input], Path(args.output), workers=args.workers, options=options)
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = summary.worker_peak_rss_kb
    print(
        json.dumps(
            {
                "n": summary.lines,
                "measurements": summary.measurements,
                "observations": summary.observations,
                "malformed": summary.malformed_count,
                "seconds": summary.seconds,
                "rss_main_mb": me / 1024,
                "rss_worker_max_mb": kids / 1024,
                "step_cpu": summary.step_cpu_seconds,
                "main_cpu": summary.main_cpu_seconds,
                "compiled": summary.compiled,
                "fingerprints": len(fps) if fps is not None else 0,
                "indexed": getattr(fps, "_index", None) is not None,
            }
        )
    )
    return 0


def _generate(path: Path, n: int, seed: int) -> tuple[float, int]:
    from probe.batch.synth import generate, load_hosts, load_templates, write_jsonl_gz

    t0 = time.perf_counter()
    size = write_jsonl_gz(path, generate(load_templates(SHARED), load_hosts(SHARED), n, seed=seed))
    return time.perf_counter() - t0, size


def _ours(
    path: Path, out: Path, workers: int, fingerprints: str, *, pure: bool = False
) -> dict[str, float]:
    cmd = [sys.executable, "-m", "tests.bench.bench_batch", "--child", "--input", str(path)]
    cmd += ["--output", str(out), "--workers", str(workers), "--fingerprints", fingerprints]
    env = dict(os.environ)
    env.pop(native.PURE_ENV, None)
    if pure:
        env[native.PURE_ENV] = "1"
    done = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print_ours(name: str, r: dict[str, float], workers: int, fingerprints: str) -> None:
    rate = r["n"] / r["seconds"]
    kind = "compiled" if r["compiled"] else "pure-Python"
    print(
        f"ours [{name}, {kind}] {r['n']:,.0f} msmts, "
        f"{r['observations']:,.0f} observation rows in {r['seconds']:.1f}s: "
        f"{rate:,.0f}/s with {workers} workers, fingerprints {fingerprints} "
        f"({1e6 / rate * workers:,.0f} us CPU-slot per msmt); peak RSS main "
        f"{r['rss_main_mb']:.0f} MiB, largest worker {r['rss_worker_max_mb']:.0f} MiB",
        flush=True,
    )
    print(
        f"  CPU per msmt: step (parse, verdict, flatten; in the workers) "
        f"{1e6 * r['step_cpu'] / r['n']:,.0f} us + main process (read, dispatch, "
        f"Parquet) {1e6 * r['main_cpu'] / r['n']:,.0f} us; {workers} cores "
        f"reach 10,000/s at {1e6 * workers / 10_000:,.0f} us",
        flush=True,
    )


def _anchor(path: Path, sample: int) -> float | None:
    """oonidata's rate on the first ``sample`` lines of ``path`` (None without .venv-ref)."""
    if not REF_PYTHON.exists():
        print(f"oonidata anchor skipped: {REF_PYTHON} not found", flush=True)
        return None
    cmd = [str(REF_PYTHON), "-c", _OONIDATA, str(path), str(sample)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    ref = json.loads(done.stdout.strip().splitlines()[-1])
    rate: float = ref["n"] / ref["seconds"]
    print(
        f"  oonidata 0.3.0 load_measurement on the first {ref['n']:,} lines (1 process): "
        f"{rate:,.0f}/s read+parse+load ({ref['n'] / ref['load_seconds']:,.0f}/s load alone, "
        f"{1e6 / rate:,.0f} us per msmt; {ref['failed']} raised)",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--oonidata-sample", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=2, help="runs on the large set")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    parser.add_argument("--fingerprints", choices=("builtin", "none", "shared"), default="builtin")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        sizes = {"small": max(args.n // 4, 1), "full": args.n}
        results: dict[str, dict[str, float]] = {}
        rates: list[float] = []
        ratios: list[float] = []
        for label, n in sizes.items():
            path = work / f"synthetic-{n}.jsonl.gz"
            gen_s, raw = _generate(path, n, seed=n)
            print(
                f"generated {n:,} measurements ({raw / n / 1024:.1f} KiB each, "
                f"{path.stat().st_size / 2**20:,.0f} MiB gz) in {gen_s:.0f}s",
                flush=True,
            )
            runs = max(args.runs, 1) if label == "full" else 1
            for run in range(1, runs + 1):
                name = label if runs == 1 else f"{label}, run {run}/{runs}"
                r = _ours(path, work / f"dataset-{label}-{run}", args.workers, args.fingerprints)
                rate = r["n"] / r["seconds"]
                _print_ours(name, r, args.workers, args.fingerprints)
                if label == "full":
                    rates.append(rate)
                    anchor = _anchor(path, min(args.oonidata_sample, n))
                    if anchor is not None:
                        ratios.append(rate / anchor)
                        print(
                            f"  ratio ours/oonidata: {rate / anchor:.2f}x wall-clock "
                            f"({rate / args.workers / anchor:.2f}x per process)",
                            flush=True,
                        )
                # the largest RSS over the runs (memory flatness compares the worst cases)
                if label in results:
                    for key in ("rss_main_mb", "rss_worker_max_mb"):
                        r[key] = max(r[key], results[label][key])
                results[label] = r
            r = results[label]
            if label == "small" and r["compiled"]:
                p = _ours(path, work / "dataset-pure", args.workers, args.fingerprints, pure=True)
                print(
                    f"  the same on the sources ({native.PURE_ENV}=1): "
                    f"{p['n'] / p['seconds']:,.0f}/s, step {1e6 * p['step_cpu'] / p['n']:,.0f} us"
                    f" + main {1e6 * p['main_cpu'] / p['n']:,.0f} us: compiled is "
                    f"{rate / (p['n'] / p['seconds']):.2f}x as fast",
                    flush=True,
                )
            if label == "small" and args.fingerprints == "builtin":
                f = _ours(path, work / "dataset-shared-fps", args.workers, "shared")
                print(
                    f"  the same with OONI's and Censored Planet's fingerprints (../shared, "
                    f"{f['fingerprints']:,.0f} of them): {f['n'] / f['seconds']:,.0f}/s, step "
                    f"{1e6 * f['step_cpu'] / f['n']:,.0f} us + main "
                    f"{1e6 * f['main_cpu'] / f['n']:,.0f} us"
                    + (" (Aho-Corasick index)" if f["indexed"] else " (no index: plain scan)"),
                    flush=True,
                )
        print(
            f"ours on the {args.n:,} set over {len(rates)} run(s): "
            f"{min(rates):,.0f}-{max(rates):,.0f}/s (goal >= 10,000/s)"
            + (f"; ours/oonidata {min(ratios):.2f}-{max(ratios):.2f}x" if ratios else "")
        )
        small, big = results["small"], results["full"]
        print(
            f"memory flatness: input x{big['n'] / small['n']:.0f} -> peak RSS main "
            f"x{big['rss_main_mb'] / small['rss_main_mb']:.2f}, worker "
            f"x{big['rss_worker_max_mb'] / small['rss_worker_max_mb']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
