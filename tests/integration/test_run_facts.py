"""Throttling from every clue and NXDOMAIN rewriting, in the censorship lab (issue 16).

The [[run_scenario]] tables of tests/lab/scenarios.toml, one probe run per batch from
cp-client with the control vantage in cp-inet, through the per-target step that records the
run's facts (tests/lab/runfacts_run.py drives probe.followup.measure_with_run_facts until
``probe run`` calls it): the baseline of the other targets, the NXDOMAIN canary, the
throughput follow-up. Batches:

- ``sni-throttle``: a TSPU-like cap of 8 kbit/s keyed on the ClientHello's server name; a
  4 KiB page (it completes, in seconds) and a 320 KiB object, after a baseline of open sites;
  and a name that does not exist, rewritten by the ISP resolver (the canary shows it);
- ``slow-link``: the client link capped to 128 kbit/s for every site for the duration of the
  test (tests/lab/slowlink.py): slow everywhere is not throttling.

The measurements marked ``golden`` are the ones kept in tests/corpus/golden (``--capture DIR``
through the environment variable CP_CAPTURE_GOLDEN writes them there).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab import lab as labmod
from tests.lab import model as m
from tests.lab.fixtures import RunIn
from tests.lab.slowlink import default_rate, slow_link

pytestmark = pytest.mark.lab

SLOW_LINK_RATE = "128kbit"


@dataclass(frozen=True)
class Batch:
    canary_suffix: str
    large_objects: dict[str, str]
    link: str | None  # the client link's rate during the batch (None: as the lab has it)


BATCHES = {
    "sni-throttle": Batch(
        "nx.lab.test", {"throttled-sni.lab.test": "https://throttled-sni.lab.test/big.bin"}, None
    ),
    "slow-link": Batch("com", {}, SLOW_LINK_RATE),
}


@dataclass(frozen=True)
class RunScenario:
    id: str
    batch: str
    phase: int
    url: str
    technique: str
    blocking: Any
    accessible: Any
    x_outcome: str
    note: str = ""
    golden: bool = False


def load() -> list[RunScenario]:
    data = tomllib.loads(m.SCENARIOS_FILE.read_text(encoding="utf-8"))
    out = []
    for raw in data.get("run_scenario", []):
        raw = dict(raw)
        for key in ("blocking", "accessible"):
            raw[key] = None if raw[key] == "null" else raw[key]
        out.append(RunScenario(**raw))
    return out


SCENARIOS = load()


def _argv(info: dict[str, Any], batch: str, output: Path) -> list[str]:
    spec = BATCHES[batch]
    argv = [
        str(m.REPO / ".venv" / "bin" / "python"), "-m", "tests.lab.runfacts_run",
        "--lab", str(Path(info["state_dir"]) / "lab.json"), "--output", str(output),
        "--canary-suffix", spec.canary_suffix,
    ]  # fmt: skip
    for host, url in spec.large_objects.items():
        argv += ["--large-object", f"{host}={url}"]
    phases = sorted({s.phase for s in SCENARIOS if s.batch == batch})
    for phase in phases:
        argv += ["--phase", *[s.url for s in SCENARIOS if s.batch == batch and s.phase == phase]]
    return argv


def _run_batch(info: dict[str, Any], run_in_client: RunIn, batch: str, out: Path) -> None:
    link = BATCHES[batch].link
    with slow_link(link) if link else nullcontext():
        result = run_in_client(*_argv(info, batch, out), timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module")
def measured(
    lab: dict[str, Any],
    run_in_client: RunIn,
    tmp_path_factory: pytest.TempPathFactory,
    lab_report: Callable[[str], None],
) -> Iterator[dict[str, dict[str, Any]]]:
    labmod.control_start()
    out = tmp_path_factory.mktemp("run-facts") / "run.jsonl"
    for batch in BATCHES:
        _run_batch(lab, run_in_client, batch, out)
    by_url: dict[str, list[dict[str, Any]]] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        msmt = json.loads(line)
        by_url.setdefault(msmt["input"], []).append(msmt)
    results = {}
    rows = []
    for s in SCENARIOS:
        runs = by_url[s.url]
        msmt = runs.pop(0)  # a URL measured in two batches: the batches ran in order
        results[s.id] = msmt
        tk = msmt["test_keys"]
        rows.append(f"{s.id:28} {tk.get('x_outcome')!s:24} {tk.get('x_rule_id')}")
    lab_report("run facts (issue 16)\n" + "\n".join(rows))
    capture = os.environ.get("CP_CAPTURE_GOLDEN")
    if capture:
        for s in SCENARIOS:
            if s.golden:
                path = Path(capture) / f"lab-{s.id.removeprefix('rf-')}.json"
                path.write_text(json.dumps(results[s.id], indent=1, sort_keys=True) + "\n")
    yield results


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_run_scenario(measured: dict[str, dict[str, Any]], scenario: RunScenario) -> None:
    tk = measured[scenario.id]["test_keys"]
    got = (tk.get("blocking"), tk.get("accessible"), tk.get("x_outcome"))
    assert got == (scenario.blocking, scenario.accessible, scenario.x_outcome), tk.get("x_rule_id")


def test_every_measurement_records_the_run_facts(measured: dict[str, dict[str, Any]]) -> None:
    for sid, msmt in measured.items():
        tk = msmt["test_keys"]
        assert tk["x_run_baseline"]["version"] == 1, sid
        assert tk["x_nxdomain_canary"]["hostname"].startswith("cp-"), sid
    throttled = measured["rf-throttled-small-page"]["test_keys"]
    assert len(throttled["x_run_baseline"]["samples"]) >= 3
    assert throttled["x_throughput_follow_up"]["url"] == "https://throttled-sni.lab.test/big.bin"
    sni = [h for h in throttled["tls_handshakes"] if "x_diag=throughput_sni" in h["tags"]]
    real = [h for h in throttled["tls_handshakes"] if "x_diag=throughput" in h["tags"]]
    assert len(sni) == 1 and len(real) == 1
    # the cap is keyed on the name: the innocuous SNI to the same address is not slowed
    assert sni[0]["t"] - sni[0]["t0"] < (real[0]["t"] - real[0]["t0"]) / 5
    rewritten = measured["rf-nxdomain-rewritten"]["test_keys"]
    assert rewritten["x_nxdomain_canary"]["addresses"] == ["198.18.2.53"]


def test_nothing_is_called_throttling_on_a_slow_link(
    measured: dict[str, dict[str, Any]],
) -> None:
    for s in SCENARIOS:
        if s.batch == "slow-link":
            tk = measured[s.id]["test_keys"]
            assert tk["x_outcome"] != "http/throttled" and tk["blocking"] is False, s.id


def test_the_slow_link_was_removed_after_its_test(measured: dict[str, dict[str, Any]]) -> None:
    assert default_rate().lower() == "10gbit"


def test_the_volunteer_address_never_appears(
    lab: dict[str, Any], measured: dict[str, dict[str, Any]]
) -> None:
    for sid, msmt in measured.items():
        assert lab["client_address"] not in json.dumps(msmt), sid
