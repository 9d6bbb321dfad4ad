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
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import lab as labmod
from tests.lab import model as m

#: the web scenarios whose verdict asks for a follow-up, and the hop it must find there
FOLLOWED_HOPS = {
    "https://sni-rst.lab.test/": 2,
    "https://sni-drop.lab.test/": 2,
    "http://host-rst.lab.test/": 2,
    "https://border-reset.lab.test/": 3,
    "http://border-blockpage.lab.test/": 3,
    "http://dns-injected.lab.test/": 1,
    "http://tproxy-blockpage.lab.test/": 1,
    "http://redirect-blockpage.lab.test/": 1,
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


def main() -> int:
    state = m.state_dir()
    if not labmod.status(state)["up"]:
        print("the lab is not up: run `make lab-up` (or `make demo`)", file=sys.stderr)
        return 2
    info: dict[str, Any] = json.loads((state / "lab.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_packet_scenarios(info, Path(tmp))
    print(report(outcomes))
    return 0 if all(not o.mismatches() for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
