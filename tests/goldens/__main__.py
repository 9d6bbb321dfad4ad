"""``python -m tests.goldens [--check] | capture-targeted [NAME...] | capture-lab [--missing]``:
regenerate the goldens.

Without a command: recompute ``observations.json`` and ``verdict.json`` of every case from its
measurement, print a unified diff of every change (a reviewable patch), write the files (or,
with ``--check``, write nothing and exit 1 when something differs). ``capture-targeted``
re-measures the fake-network cases (only the NAMEd ones, when given: a new case without
re-capturing the others, whose certificates would change); ``capture-lab`` the lab scenarios,
web, apps and packet (``--missing``: write only the cases that have no golden yet; root, with
the lab up and under its lock:
``flock /tmp/censorprobe-lab.lock sh -c '.venv/bin/python -m tests.lab up --control &&
.venv/bin/python -m tests.goldens capture-lab; .venv/bin/python -m tests.lab down'``).
Both then regenerate the derived tiers. Removed cases (a scenario gone) are deleted.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.goldens import targeted, tiers


def regenerate(*, check: bool) -> int:
    changed = 0
    for case in tiers.cases():
        for name, text in case.derived().items():
            patch = tiers.diff(case, name, text)
            if not patch:
                continue
            changed += 1
            sys.stdout.write(patch)
            if not check:
                case.directory.mkdir(parents=True, exist_ok=True)
                (case.directory / name).write_text(text, encoding="utf-8")
    stale = _stale_directories()
    for directory in stale:
        print(f"stale: {directory.relative_to(tiers.REPO)} (no such case any more)")
        if not check:
            shutil.rmtree(directory)
    total = changed + len(stale)
    verb = "differ" if check else "written"
    print(f"goldens: {len(tiers.cases())} cases, {total} files {verb}", file=sys.stderr)
    return 1 if check and total else 0


def _stale_directories() -> list[Path]:
    known = {case.directory for case in tiers.cases()}
    found = [d for tier in tiers.TIERS for d in sorted((tiers.GOLDENS / tier).glob("*/"))]
    return [d for d in found if d not in known]


def _write_measurement(tier: str, name: str, measurement: dict[str, Any]) -> None:
    directory = tiers.GOLDENS / tier / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / tiers.MEASUREMENT).write_text(tiers.dumps(measurement), encoding="utf-8")


def capture_targeted(names: list[str]) -> None:
    unknown = set(names) - {c.name for c in targeted.CASES} - {targeted.OONI_WITHOUT_STATUS["name"]}
    if unknown:
        raise SystemExit(f"capture-targeted: no such case: {', '.join(sorted(unknown))}")
    for case in targeted.CASES:
        if names and case.name not in names:
            continue
        measurement = targeted.capture(case)
        got = measurement["test_keys"].get("x_rule_id")
        if got != case.rule_id:
            raise SystemExit(f"targeted/{case.name}: expected rule {case.rule_id}, got {got}")
        _write_measurement("targeted", case.name, measurement)
    extra = targeted.OONI_WITHOUT_STATUS
    if not names or extra["name"] in names:
        _write_measurement("targeted", str(extra["name"]), targeted.ooni_without_status())


def capture_lab(*, missing: bool = False) -> None:
    """Re-measure the lab cases (``missing``: write only those without a golden yet)."""
    from tests.lab import model as m
    from tests.lab.demo import run_scenarios, running_lab
    from tests.lab.demo_apps import run_apps
    from tests.lab.demo_packet import run_packet_level, run_packet_scenarios

    info = running_lab()
    if info is None:
        raise SystemExit("capture-lab: the lab is not up")
    lab = tiers.GOLDENS / "lab"
    if not missing:
        for directory in sorted(lab.glob("*/")):
            shutil.rmtree(directory)  # scenarios removed from scenarios.toml must not linger

    def keep(name: str, measurement: dict[str, Any], problems: object) -> None:
        if missing and (lab / name / tiers.MEASUREMENT).is_file():
            return
        _write_measurement("lab", name, measurement)
        if problems:
            print(f"lab/{name}: {problems}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        for outcome in run_scenarios(info, Path(tmp) / "web.jsonl"):
            keep(outcome.scenario.id, outcome.measurement, outcome.mismatches())
        for app in run_apps(info, Path(tmp) / "apps.jsonl", m.load_app_scenarios()):
            keep(app.scenario.id, app.measurement, app.mismatches())
        for traced in run_packet_scenarios(info, Path(tmp)):
            keep(traced.scenario.id, traced.measurement, traced.mismatches())
        followed = tiers.packet_level_cases()
        run = run_packet_level(info, Path(tmp) / "packet-level.jsonl", list(followed.values()))
        for name, url in followed.items():
            keep(name, run.web[url], None)


def main(argv: list[str]) -> int:
    if argv[:1] == ["capture-targeted"]:
        capture_targeted(argv[1:])
    elif argv in (["capture-lab"], ["capture-lab", "--missing"]):
        capture_lab(missing=argv[1:] == ["--missing"])
    elif argv not in ([], ["--check"]):
        print(__doc__, file=sys.stderr)
        return 2
    return regenerate(check=argv == ["--check"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
