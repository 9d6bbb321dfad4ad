"""The packet-level scenarios (issue 15): `probe packet` from cp-client, where it places each
censor, and whether it proves injection (docs/packet.md).

Each ``[[packet_scenario]]`` of scenarios.toml is traced by hand (``--input URL --stage S
--address A``) with the lab's ASN database and the volunteer's ASN, so the privacy rules apply as
they would for a volunteer. The same code backs tests/integration/test_packet.py and the packet
table of ``make demo``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import lab as labmod
from tests.lab import model as m

#: the web scenarios whose verdict asks for a follow-up, and the hop it must find there
FOLLOWED_HOPS: dict[str, int | None] = {
    "https://sni-rst.lab.test/": 2,
    "https://sni-drop.lab.test/": 2,
    "http://host-rst.lab.test/": 2,
    "https://border-reset.lab.test/": 3,
    "http://border-blockpage.lab.test/": 3,
    "http://dns-injected.lab.test/": 1,
    "http://tproxy-blockpage.lab.test/": 1,
    "http://redirect-blockpage.lab.test/": 1,
    # the server's own firewall: followed up, no censor on the path (packet/server-reaction)
    "https://geoblock.lab.test/": None,
}


@dataclass(frozen=True)
class PacketOutcome:
    scenario: m.PacketScenario
    measurement: dict[str, Any]
    stderr: str

    @property
    def keys(self) -> dict[str, Any]:
        tk: dict[str, Any] = self.measurement.get("test_keys") or {}
        return tk

    @property
    def censor(self) -> dict[str, Any]:
        censors = self.keys.get("x_censors") or [{}]
        first: dict[str, Any] = censors[0]
        return first

    def got(self) -> dict[str, Any]:
        c = self.censor
        return {
            "outcome": c.get("status"),
            "censor_hop": c.get("hop") or 0,
            "reaction": c.get("reaction"),
            "placement": c.get("placement"),
            "path_length": c.get("path_length") or 0,
            "injection": any(x.get("injected") for x in self.keys.get("x_injection") or []),
            "x_outcome": self.keys.get("x_outcome"),
        }

    def expected(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "outcome": s.outcome,
            "censor_hop": s.censor_hop,
            "reaction": s.reaction,
            "placement": s.placement,
            "path_length": s.path_length,
            "injection": s.injection,
            "x_outcome": s.x_outcome,
        }

    def mismatches(self) -> list[str]:
        got, want = self.got(), self.expected()
        return [f"{k}: expected {want[k]!r}, got {got[k]!r}" for k in want if got[k] != want[k]]


def packet_argv(info: dict[str, Any], scenario: m.PacketScenario, output: Path) -> list[str]:
    probe = m.REPO / ".venv" / "bin" / "probe"
    return labmod.client_argv(
        [
            str(probe if probe.exists() else "probe"),
            "packet",
            "--input",
            scenario.url,
            "--stage",
            scenario.stage,
            "--address",
            scenario.address,
            "--output",
            str(output),
            *lab_options(info),
            *(["--max-packets", str(scenario.max_packets)] if scenario.max_packets else []),
        ]
    )


def lab_options(info: dict[str, Any]) -> list[str]:
    """What `probe packet` needs in the lab: its ranges, its ASN database, the volunteer's ASN,
    a short connect timeout (the blackholed site never answers)."""
    return [
        "--public-ranges",
        ",".join(info["public_ranges"]),
        "--asn-db",
        info["asn_db"],
        "--probe-asn",
        info["client_asn"],
        "--timeout-connect",
        "2",
    ]


def run_packet_scenarios(info: dict[str, Any], directory: Path) -> list[PacketOutcome]:
    outcomes = []
    for scenario in m.load_packet_scenarios():
        output = directory / f"{scenario.id}.jsonl"
        proc = subprocess.run(
            packet_argv(info, scenario, output), capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"probe packet failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        measurement = json.loads(output.read_text(encoding="utf-8").splitlines()[0])
        outcomes.append(PacketOutcome(scenario, measurement, proc.stderr))
    return outcomes


@dataclass(frozen=True)
class PacketLevelRun:
    """What one `probe run --packet-level` wrote: the web measurements (by URL), its
    censor_trace report (beside the output, docs/packet.md) and what it said."""

    web: dict[str, dict[str, Any]]
    traces: list[dict[str, Any]]
    trace_report: Path
    stderr: str


def run_packet_level(
    info: dict[str, Any], output: Path, urls: list[str], *, drop_raw: bool = False
) -> PacketLevelRun:
    """`probe run --packet-level` from cp-client over ``urls`` (the lab's ASN database for the
    routers); with ``drop_raw`` in a child that lost CAP_NET_RAW."""
    from tests.lab.demo import probe_argv
    from tests.lab.fixtures import drop_net_raw

    argv = probe_argv(info, output, urls, "--packet-level", "--asn-db", info["asn_db"])
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=drop_net_raw if drop_raw else None,  # noqa: PLW1509 - a single-threaded child
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    web = {x["input"]: x for x in _jsonl(output)}
    report = output.with_name(output.name.removesuffix(".jsonl") + ".censor_trace.jsonl")
    traces = _jsonl(report) if report.exists() else []
    return PacketLevelRun(web=web, traces=traces, trace_report=report, stderr=proc.stderr)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _fmt(value: Any) -> str:
    return "-" if value in (None, 0) else str(value).lower()


def report(outcomes: list[PacketOutcome]) -> str:
    head = ("scenario", "expected", "got", "packets", "seconds", "")
    rows = [head]
    for o in outcomes:
        want, got = o.expected(), o.got()
        rows.append(
            (
                o.scenario.id,
                "/".join(_fmt(want[k]) for k in ("censor_hop", "reaction", "placement")),
                "/".join(_fmt(got[k]) for k in ("censor_hop", "reaction", "placement")),
                str(o.keys.get("x_packets_sent")),
                f"{o.measurement.get('test_runtime', 0):.1f}",
                "ok" if not o.mismatches() else "MISMATCH",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["Packet-level localisation per scenario (hop/reaction/placement)"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    agree = sum(1 for o in outcomes if not o.mismatches())
    lines.append(f"{agree}/{len(outcomes)} packet scenarios as expected")
    for o in outcomes:
        for problem in o.mismatches():
            lines.append(f"  {o.scenario.id}: {problem}")
    return "\n".join(lines)


def run_report(run: PacketLevelRun) -> tuple[str, int]:
    """The table of a `probe run --packet-level` over FOLLOWED_HOPS: the web verdict and the
    censor's hop, expected and got; and how many differ."""
    rows = [("url", "web verdict", "expected hop", "got", "")]
    wrong = 0
    for url, hop in FOLLOWED_HOPS.items():
        tk = run.web[url]["test_keys"]
        got = tk.get("x_censor_hop") if "x_packet" in tk else "not followed"
        ok = got == hop
        wrong += not ok
        rows.append(
            (url, str(tk.get("x_outcome")), _fmt(hop), _fmt(got), "ok" if ok else "MISMATCH")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["probe run --packet-level: the censor's hop in the web verdicts"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(
        f"{len(FOLLOWED_HOPS) - wrong}/{len(FOLLOWED_HOPS)} as expected; "
        f"{len(run.traces)} censor_trace measurements in their own report"
    )
    return "\n".join(lines), wrong


def main() -> int:
    from tests.lab.demo import running_lab

    info = running_lab()
    if info is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_packet_scenarios(info, Path(tmp))
        run = run_packet_level(info, Path(tmp) / "web.jsonl", list(FOLLOWED_HOPS))
    print(report(outcomes))
    print()
    table, wrong = run_report(run)
    print(table)
    return 0 if all(not o.mismatches() for o in outcomes) and not wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
