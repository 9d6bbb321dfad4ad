"""`make demo`: run the probe against every lab scenario from the volunteer's namespace, with the
control vantage running in cp-inet, and print the verdict table and the confusion table.

The same code backs the integration tests (tests/integration/test_scenarios.py), so what the
demo shows is what CI asserts.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests import volunteer
from tests.lab import lab as labmod
from tests.lab import model as m

STAGES = ("dns", "tcp_connect", "tls_handshake", "http_request")


@dataclass(frozen=True)
class Outcome:
    scenario: m.Scenario
    measurement: dict[str, Any]

    @property
    def keys(self) -> dict[str, Any]:
        tk: dict[str, Any] = self.measurement.get("test_keys") or {}
        return tk

    def stage_failure(self, stage: str) -> str | None:
        """The depth-0 main-flow failure at ``stage``: "ok", a failure string, or None."""
        tk = self.keys
        if stage == "dns":
            dns = [
                q
                for q in tk.get("queries") or []
                if q.get("engine") == "getaddrinfo" and "depth=0" in q.get("tags", [])
            ]
            if not dns:
                return None
            return tk.get("dns_experiment_failure") or dns[0].get("failure") or "ok"
        name = {
            "tcp_connect": "tcp_connect",
            "tls_handshake": "tls_handshakes",
            "http_request": "requests",
        }[stage]
        events = [
            e
            for e in tk.get(name) or []
            if "depth=0" in e.get("tags", [])
            and not any(t.startswith("x_diag=") for t in e.get("tags", []))
        ]
        if not events:
            return None
        if stage == "http_request":
            event = events[-1]  # requests are newest first: the depth-0 request is the last
            return event.get("failure") or "ok"
        status = event_failure(events[0], stage)
        return status or "ok"

    def got(self) -> tuple[Any, Any, str]:
        tk = self.keys
        return tk.get("blocking"), tk.get("accessible"), str(tk.get("x_outcome"))

    def expected(self) -> tuple[Any, Any, str]:
        s = self.scenario
        return s.blocking, s.accessible, s.x_outcome

    def mismatches(self) -> list[str]:
        problems = []
        for stage, want in self.scenario.failures.items():
            got = self.stage_failure(stage)
            if got != want:
                problems.append(f"{stage}: expected {want}, got {got}")
        for key, want, got in zip(
            ("blocking", "accessible", "x_outcome"), self.expected(), self.got(), strict=True
        ):
            if want != got:
                problems.append(f"{key}: expected {want!r}, got {got!r}")
        return problems


def event_failure(event: dict[str, Any], stage: str) -> str | None:
    if stage == "tcp_connect":
        return (event.get("status") or {}).get("failure")
    failure: str | None = event.get("failure")
    return failure


def probe_argv(
    info: dict[str, Any],
    output: Path,
    urls: list[str],
    *extra: str,
    concurrency: int = 30,
    config: Path | None = None,
) -> list[str]:
    """``probe run`` in cp-client over ``urls`` with the lab's facts (and ``extra`` options), as
    the volunteer whose ``config`` it reads (default: the lab volunteer: consent given, uploads
    off, tests/volunteer.py)."""
    probe = m.REPO / ".venv" / "bin" / "probe"
    argv = [
        str(probe),
        "run",
        "--config",
        str(config or volunteer.lab_config(m.state_dir())),
        "--output",
        str(output),
        "--no-progress",
        "--control",
        info["control_url"],
        "--ca-file",
        info["ca_file"],
        "--resolver",
        info["resolver"],
        "--public-ranges",
        ",".join(info["public_ranges"]),
        "--probe-cc",
        "ZZ",
        "--concurrency",
        str(concurrency),
        # whoami on the lab's helper answers; should it not, the STUN fallback must stay in
        # the lab too (nothing listens there: a quick "connection_refused")
        "--stun-server",
        f"{urlsplit(info['control_url']).hostname}:3478",
        *extra,
    ]
    for url in urls:
        argv += ["--input", url]
    return labmod.client_argv(argv)


@dataclass(frozen=True)
class Batch:
    """One ``probe run``: its scenarios, how many at once, the client link's rate."""

    scenarios: list[m.Scenario]
    concurrency: int = 30
    link: str | None = None


def batches(scenarios: list[m.Scenario], runs: list[m.Run]) -> list[Batch]:
    """The main run (every scenario at once), then each ``serial`` scenario alone (it shares a
    throttled link, where concurrent flows would starve each other), then each [[run]]: its
    scenarios one after the other in file order (each one's run baseline is the ones before)."""
    main = [s for s in scenarios if not s.run and not s.extra.get("serial")]
    out = [Batch(main)]
    out += [Batch([s]) for s in scenarios if not s.run and s.extra.get("serial")]
    for run in runs:
        out.append(Batch([s for s in scenarios if s.run == run.name], 1, run.link))
    return [b for b in out if b.scenarios]


def run_scenarios(info: dict[str, Any], output: Path) -> list[Outcome]:
    """Run ``probe run`` over every scenario URL (:func:`batches`); one Outcome per scenario.
    Every measurement is appended to ``output``."""
    from tests.lab.slowlink import slow_link

    _sites, scenarios = m.load()
    outcomes: dict[str, Outcome] = {}
    for batch in batches(scenarios, m.load_runs()):
        part = output.with_name(f"{output.stem}.{len(outcomes)}.jsonl")
        urls = list(dict.fromkeys(s.url for s in batch.scenarios))
        argv = probe_argv(info, part, urls, concurrency=batch.concurrency)
        with slow_link(batch.link) if batch.link else contextlib.nullcontext():
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"probe run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        text = part.read_text(encoding="utf-8")
        with output.open("a", encoding="utf-8") as out:
            out.write(text)
        by_url = {json.loads(line)["input"]: json.loads(line) for line in text.splitlines()}
        for s in batch.scenarios:
            outcomes[s.id] = Outcome(s, by_url[s.url])
    return [outcomes[s.id] for s in scenarios]


def _fmt(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def verdict_table(outcomes: list[Outcome]) -> str:
    rows = [("scenario", "expected", "got", "rule", "")]
    for o in outcomes:
        exp = o.expected()
        got = o.got()
        mark = "ok" if not o.mismatches() else "MISMATCH"
        rows.append(
            (
                o.scenario.id,
                f"{_fmt(exp[0])}/{exp[2]}",
                f"{_fmt(got[0])}/{got[2]}",
                str(o.keys.get("x_rule_id")),
                mark,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def confusion_table(outcomes: list[Outcome]) -> str:
    """Expected x got, on the x_outcome signature."""
    pairs = Counter((o.scenario.x_outcome, o.got()[2]) for o in outcomes)
    expected = sorted({e for e, _ in pairs})
    got = sorted({g for _, g in pairs})
    head = ["expected \\ got", *got]
    rows = [head] + [[e, *[str(pairs.get((e, g), "") or ".") for g in got]] for e in expected]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def report(outcomes: list[Outcome]) -> str:
    agree = sum(1 for o in outcomes if not o.mismatches())
    lines = [
        "Verdicts per lab scenario",
        verdict_table(outcomes),
        "",
        "Confusion table (x_outcome, expected x got)",
        confusion_table(outcomes),
        "",
        f"{agree}/{len(outcomes)} scenarios as expected",
    ]
    for o in outcomes:
        for problem in o.mismatches():
            lines.append(f"  {o.scenario.id}: {problem}")
    return "\n".join(lines)


def running_lab() -> dict[str, Any] | None:
    """The facts of the running lab with its control vantage started, or None (said why)."""
    state = m.state_dir()
    if not labmod.status(state)["up"]:
        print("the lab is not up: run `make lab-up` (or `make demo`)", file=sys.stderr)
        return None
    labmod.control_start(state)
    info: dict[str, Any] = json.loads((state / "lab.json").read_text())
    return info


def main() -> int:
    info = running_lab()
    if info is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_scenarios(info, Path(tmp) / "demo.jsonl")
    print(report(outcomes))
    return 0 if all(not o.mismatches() for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
