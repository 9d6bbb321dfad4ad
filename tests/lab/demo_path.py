"""`make demo`, the volunteer-to-researcher path (issue 14): consent, run, upload, analyze, report.

``python -m tests.lab.demo_path`` (lab up, under the lab lock as ``make demo`` takes it):

1. a collector and an upload proxy start in cp-inet (:mod:`tests.lab.collector`);
2. a new volunteer (a config and data home of their own) reads what they agree to and gives
   consent, naming the collector (``probe onboard --yes --collector URL``);
3. ``probe run`` in cp-client measures a few lab scenarios; each measurement is written, then
   uploaded; the summary says how many were uploaded and how many wait;
4. the censor blocks the collector (the volunteer is given its blocked port): the volunteer
   adds the proxy on the uncensored side (SOCKS5, as Tor's) and runs again;
5. the collector stops (its journal is rolled into ``raw/YYYYMMDD/HH/CC/test/*.jsonl.gz``);
   the researcher runs ``probe analyze STORE`` and ``probe report --query``.

Every command is printed with what it printed. Exit 1 unless every measurement the volunteer
wrote is in the store exactly once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import orjson

from tests.lab import collector as labcollector
from tests.lab import demo
from tests.lab import model as m
from tests.lab.collector import PROBE, LabVolunteer
from tests.unit.collectors import read_store_lines


def show(title: str, command: str, output: str) -> None:
    print(f"\n== {title}\n$ {command}")
    print(output.rstrip())


def quiet_probe(*args: str) -> str:
    proc = subprocess.run([PROBE, *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"probe {args[0]} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def main() -> int:
    info = demo.running_lab()
    if info is None:
        return 2
    state = m.state_dir()
    store = labcollector.collector_store(state)
    shutil.rmtree(store, ignore_errors=True)
    urls = labcollector.QUICK_URLS
    with tempfile.TemporaryDirectory(prefix="cp-demo-path-") as tmp:
        who = LabVolunteer(info, Path(tmp) / "volunteer")
        labcollector.collector_start(state)
        labcollector.proxy_start(state)
        try:
            text = quiet_probe("onboard", "--text")
            risks = text[text.index("The risks") : text.index("What a measurement contains")]
            show("consent: the risks the volunteer reads", "probe onboard --text", risks)
            said = who.choose("--collector", labcollector.COLLECTOR_URL)
            show(
                "consent given",
                f"probe onboard --yes --collector {labcollector.COLLECTOR_URL}",
                said,
            )
            run = who.run("direct", urls[:6])
            show(
                "measure and upload (cp-client)",
                "probe run --input ... (6 lab scenarios)",
                run.stdout,
            )

            blocked = labcollector.BLOCKED_COLLECTOR_URL
            proxy = labcollector.SOCKS_PROXY_URL
            said = who.choose("--collector", blocked, "--proxy", proxy)
            show(
                "the censor blocks the collector: through the proxy on the uncensored side",
                f"probe onboard --yes --collector {blocked} --proxy {proxy}",
                said,
            )
            run = who.run("through-proxy", urls[6:])
            show("measure and upload through the proxy", "probe run --input ...", run.stdout)
        finally:
            labcollector.stop(state)  # the journal is rolled into parts
        parts = sorted(p.relative_to(store) for p in store.rglob("*.jsonl.gz"))
        show(
            "the collector's store", f"find {store} -name '*.jsonl.gz'", "\n".join(map(str, parts))
        )

        dataset = Path(tmp) / "dataset"
        ranges = ",".join(info["public_ranges"])
        analyzed = quiet_probe(
            "analyze", str(store), "--output", str(dataset), "--public-ranges", ranges,
            "--format", "table",
        )  # fmt: skip
        show("the researcher analyses the store", f"probe analyze {store} --output DIR", analyzed)
        for query in ("counts", "techniques"):
            report = quiet_probe("report", str(dataset), "--query", query)
            show(f"report: {query}", f"probe report DIR --query {query}", report)

        written = Counter(orjson.loads(line)["input"] for line in who.lines())
        stored = Counter(str(msmt["input"]) for msmt in read_store_lines(store))
    ok = stored == written and set(written) == set(urls)
    print(
        f"\n{sum(stored.values())} measurements in the store, {sum(written.values())} written by "
        f"the volunteer: {'each exactly once' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
