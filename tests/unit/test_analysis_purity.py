"""probe.analysis stays pure: importing it pulls in no network or async machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("trio", "socket", "ssl", "httpcore", "httpx", "probe.stages", "probe.control")


def test_importing_analysis_loads_no_network_module() -> None:
    code = (
        "import json, sys\n"
        "import probe.analysis\n"
        "from probe.analysis import fingerprints, verdict, rules, observations\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        f" or m in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    assert loaded == [], f"probe.analysis imported {loaded}"
