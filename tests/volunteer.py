"""A volunteer who gave consent, for the tests and the lab's tools (demo, bench, goldens).

``probe run`` measures nothing without informed consent. Tests and tools that run it agree the
way a volunteer who scripts the probe does: the real ``probe onboard --yes`` writes the consent
into a config file of their own, which ``probe run`` then reads (``--config FILE``, or
``XDG_CONFIG_HOME``). Nothing weakens the gate. Their choice is ``--no-upload`` unless they say
otherwise: measurements stay on this computer (tests that upload name a collector of their own).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = [sys.executable, "-m", "probe"]


def agree(config: Path, *choices: str) -> Path:
    """Consent recorded in ``config`` by ``probe onboard --yes [choices]`` (default
    ``--no-upload``); returns ``config``."""
    config.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [*PROBE, "onboard", "--yes", "--config", str(config), *(choices or ("--no-upload",))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe onboard --yes failed: {proc.stderr.strip()}")
    return config


def home(root: Path, *choices: str) -> dict[str, str]:
    """A volunteer's home under ``root``: ``XDG_CONFIG_HOME`` with consent given (``choices``
    as in :func:`agree`) and ``XDG_DATA_HOME`` (the outbox); the variables to set."""
    agree(root / "config" / "censorprobe" / "config.toml", *choices)
    return {"XDG_CONFIG_HOME": str(root / "config"), "XDG_DATA_HOME": str(root / "data")}


def lab_config(state: Path) -> Path:
    """The lab volunteer's config (``STATE/volunteer/config.toml``, consent given, uploads
    off), written on first use: ``probe run --config`` it in cp-client."""
    path = state / "volunteer" / "config.toml"
    if not path.exists():
        agree(path)
    return path
