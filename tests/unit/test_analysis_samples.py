"""Real OONI samples (../shared/data/ooni-samples) and totality under random mutation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.analysis import VERDICT_KEYS, analyze
from probe.analysis.fingerprints import builtin, load_directory

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLES = SHARED / "ooni-samples"
RU_BLOCKPAGE = (
    "explorer-fixture-RU-webconnectivity-http-diff-blockpage-"
    "01202003039e13e3e38be1918d3a64c2ec27ea22.json"
)


def _load(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(line)  # a broken line is still an input analyze must survive
        return out
    return [json.loads(text)]


def _all_samples() -> list[tuple[str, Any]]:
    files = sorted(SAMPLES.glob("*.json*")) + sorted((SAMPLES / "edge-cases").glob("*.json*"))
    assert len(files) > 30, "../shared/data/ooni-samples is missing"
    return [(f.name, m) for f in files for m in _load(f)]


def test_ru_blockpage_is_confirmed_by_our_fingerprint() -> None:
    m = json.loads((SAMPLES / RU_BLOCKPAGE).read_text(encoding="utf-8"))
    v = analyze(m, fingerprints=builtin())
    assert v["blocking"] == "http-diff"
    assert v["x_outcome"] == "http/redirect-to-blockpage"
    assert v["x_fingerprint_id"] == "cpr.ru.body.rkn_registry_link"
    assert v["x_evidence"] == ["requests[0]"]


def test_indonesian_redirect_missed_by_the_probe_is_caught_with_ooni_fingerprints() -> None:
    m = json.loads(
        (SAMPLES / "backend-fastpath-webconnectivity_20250527_android.json").read_text("utf-8")
    )
    assert analyze(m)["x_outcome"] == "ok"  # OONI's HTTP-diff rule misses it, as the probe did
    v = analyze(m, fingerprints=load_directory(SHARED / "fingerprints"))
    assert v["x_outcome"] in {"http/redirect-to-blockpage", "http/blockpage"}
    assert v["blocking"] == "http-diff"


def test_every_sample_gets_a_verdict_with_a_rule() -> None:
    fps = builtin()
    for name, m in _all_samples():
        v = analyze(m if isinstance(m, dict) else {"raw": m}, fingerprints=fps)
        assert list(v) == list(VERDICT_KEYS), name
        assert v["x_rule_id"] and v["x_rule_id"] != "internal.error", name
        if v["blocking"] is None:
            assert v["accessible"] is None, name


def test_edge_cases_are_null_verdicts() -> None:
    for f in ("backend-fastpath-test_keys_none.json", "backend-fastpath-tor.json"):
        v = analyze(_load(SAMPLES / "edge-cases" / f)[0])
        assert (v["blocking"], v["accessible"], v["x_rule_id"]) == (None, None, "input.unusable")


_BASE = json.loads(
    (SHARED / "ooni-qa" / "httpDiffWithConsistentDNS" / "measurement.json").read_text()
)
_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.none(), max_size=2),
)  # fmt: skip


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


_ALL_PATHS = [p for p in _paths(_BASE) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_ALL_PATHS), _JUNK), min_size=1, max_size=6))
def test_analyze_is_total_under_mutation(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    m = copy.deepcopy(_BASE)
    for path, value in mutations:
        node: Any = m
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    v = analyze(m, fingerprints=builtin())
    assert v["x_rule_id"] != "internal.error"
    assert analyze(m, fingerprints=builtin()) == v  # deterministic
