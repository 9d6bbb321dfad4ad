"""The analysis side stays pure: importing the analysis, the registry (whose measure functions
are referenced by name) and the batch's verdict pulls in no network or async machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "trio", "socket", "ssl", "httpcore", "httpx", "h11", "dns", "argparse",
    "probe.stages", "probe.control", "probe.net", "probe.trace", "probe.experiment",
    "probe.session", "probe.apps.runner", "probe.failures",
)  # fmt: skip


def test_importing_analysis_loads_no_network_module() -> None:
    code = (
        "import json, sys\n"
        "import probe.analysis\n"
        "from probe.analysis import fingerprints, verdict, rules, observations\n"
        "import probe.registry, probe.batch.verdict, probe.apps.verdict, probe.vocabulary\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        f" or m in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    assert loaded == [], f"probe.analysis imported {loaded}"
