"""The app scenarios of the lab: run every lab app file from cp-client and print per-host tables.

``python -m tests.lab.demo_apps`` (lab up) runs ``probe run --app-file tests/lab/apps/<app>.toml``
for every [[app_scenario]] of scenarios.toml in one probe run, plus the seed case's web test
(``probe run -i http://www.linkedin.app.lab.test/``), with the control vantage in cp-inet, and
prints one row per (host, port) with what was expected. The same code backs
tests/integration/test_apps.py; ``make demo`` can call :func:`main` after the web scenarios.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import model as m
from tests.lab.demo import probe_argv

SEED_URL = "http://www.linkedin.app.lab.test/"
SEED_APP = "app-linkedin"
NOT_BLOCKING = ("ok", "down/everywhere")
#: a shorter TCP connect timeout keeps the run short (Telegram's dropped DCs); the verdicts do
#: not depend on it
CONNECT_TIMEOUT = "4"


def app_name(scenario: m.AppScenario) -> str:
    """The ``name`` of the scenario's app file (the measurement's ``x_app``)."""
    with scenario.path.open("rb") as fh:
        return str(tomllib.load(fh)["name"])


@dataclass(frozen=True)
class AppOutcome:
    scenario: m.AppScenario
    measurement: dict[str, Any]

    @property
    def keys(self) -> dict[str, Any]:
        tk: dict[str, Any] = self.measurement.get("test_keys") or {}
        return tk

    @property
    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.keys.get("x_hosts") or []
        return rows

    def mismatches(self) -> list[str]:
        s, tk = self.scenario, self.keys
        problems = []
        for key, want in (
            ("x_app_verdict", s.x_app_verdict),
            ("x_outcome", s.x_outcome),
            ("x_anomaly", s.x_anomaly),
        ):
            if tk.get(key) != want:
                problems.append(f"{key}: expected {want!r}, got {tk.get(key)!r}")
        for key, want in s.ooni.items():
            if key not in tk or tk[key] != want:
                problems.append(f"{key}: expected {want!r}, got {tk.get(key, '<missing>')!r}")
        seen = set()
        for row in self.rows:
            seen.add(row["id"])
            where = f"host {row['id']} port {row['port']}"
            want = s.hosts.get(row["id"])
            if want is None:
                problems.append(f"{where}: no expectation in scenarios.toml")
                continue
            if row["outcome"] != want:
                problems.append(f"{where}: expected {want}, got {row['outcome']}")
            if row["blocking"] is not (want not in NOT_BLOCKING):
                problems.append(f"{where}: blocking {row['blocking']!r} for {want}")
        for host_id in sorted(set(s.hosts) - seen):
            problems.append(f"host {host_id}: no row in x_hosts")
        return problems


def _read(output: Path) -> list[dict[str, Any]]:
    lines = output.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _probe(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"probe run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def run_apps(
    info: dict[str, Any], output: Path, scenarios: list[m.AppScenario] | None = None
) -> list[AppOutcome]:
    """One probe run over every scenario's app file; one AppOutcome per scenario."""
    scenarios = m.load_app_scenarios() if scenarios is None else scenarios
    argv = probe_argv(info, output, [])
    argv += ["--timeout-connect", CONNECT_TIMEOUT]
    for s in scenarios:
        argv += ["--app-file", str(s.path)]
    _probe(argv)
    by_app = {msmt["test_keys"].get("x_app"): msmt for msmt in _read(output)}
    return [AppOutcome(s, by_app[app_name(s)]) for s in scenarios]


def run_seed_website(info: dict[str, Any], output: Path) -> dict[str, Any]:
    """The web test of the seed case's website (the blockpage on port 80)."""
    _probe(probe_argv(info, output, [SEED_URL]))
    (measurement,) = _read(output)
    return measurement


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def host_table(outcomes: list[AppOutcome]) -> str:
    """One line per (app, host, port): stage results, outcome, blocking, expectation."""
    head = ("app", "host", "port", "dns", "tcp", "tls", "http", "outcome", "blocking", "")
    rows = [head]
    for o in outcomes:
        for r in o.rows:
            want = o.scenario.hosts.get(r["id"])
            good = r["outcome"] == want and r["blocking"] is (want not in NOT_BLOCKING)
            http = r["http"] if r["http_status"] is None else f"{r['http']} {r['http_status']}"
            rows.append(
                (
                    o.scenario.id.removeprefix("app-"),
                    r["id"],
                    _cell(r["port"]),
                    _cell(r["dns"]),
                    _cell(r["tcp"]),
                    _cell(r["tls"]),
                    _cell(http),
                    r["outcome"],
                    _cell(r["blocking"]),
                    "ok" if good else f"MISMATCH (expected {want})",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def app_table(outcomes: list[AppOutcome]) -> str:
    rows = [("app scenario", "expected", "got", "rule", "")]
    for o in outcomes:
        tk = o.keys
        rows.append(
            (
                o.scenario.id,
                f"{o.scenario.x_app_verdict}/{o.scenario.x_outcome}",
                f"{tk.get('x_app_verdict')}/{tk.get('x_outcome')}",
                str(tk.get("x_rule_id")),
                "ok" if not o.mismatches() else "MISMATCH",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def seed_problems(website: dict[str, Any], outcomes: list[AppOutcome]) -> list[str]:
    """The seed case exactly: website blocked by a blockpage, every app API host answering."""
    problems = []
    tk = website.get("test_keys") or {}
    if (tk.get("blocking"), tk.get("x_outcome")) != ("http-diff", "http/blockpage"):
        problems.append(
            f"website: expected http-diff/http/blockpage, got "
            f"{tk.get('blocking')}/{tk.get('x_outcome')}"
        )
    app = next((o for o in outcomes if o.scenario.id == SEED_APP), None)
    if app is None:
        return [*problems, f"{SEED_APP} was not run"]
    if app.keys.get("x_app_verdict") != "accessible":
        problems.append(f"app: expected accessible, got {app.keys.get('x_app_verdict')}")
    bad = [f"{r['id']}:{r['port']}={r['outcome']}" for r in app.rows if r["outcome"] != "ok"]
    if bad or not app.rows:
        problems.append(f"app hosts not all ok: {bad or 'no rows'}")
    return problems


def report(outcomes: list[AppOutcome], website: dict[str, Any] | None = None) -> str:
    agree = sum(1 for o in outcomes if not o.mismatches())
    lines = [
        "App verdicts per lab app scenario",
        app_table(outcomes),
        "",
        "Per-host rows (x_hosts)",
        host_table(outcomes),
        "",
        f"{agree}/{len(outcomes)} app scenarios as expected",
    ]
    for o in outcomes:
        lines += [f"  {o.scenario.id}: {p}" for p in o.mismatches()]
    if website is not None:
        tk = website.get("test_keys") or {}
        problems = seed_problems(website, outcomes)
        lines += [
            "",
            f"Seed case: web test of {SEED_URL}: blocking {_cell(tk.get('blocking'))}, "
            f"x_outcome {tk.get('x_outcome')}; app file linkedin.toml: "
            + ", ".join(
                o.keys.get("x_app_verdict", "?") for o in outcomes if o.scenario.id == SEED_APP
            ),
            "seed case as expected"
            if not problems
            else "seed case MISMATCH: " + "; ".join(problems),
        ]
    return "\n".join(lines)


def main() -> int:
    from tests.lab.demo import running_lab

    info = running_lab()
    if info is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_apps(info, Path(tmp) / "apps.jsonl")
        website = run_seed_website(info, Path(tmp) / "seed.jsonl")
    print(report(outcomes, website))
    ok = all(not o.mismatches() for o in outcomes) and not seed_problems(website, outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
