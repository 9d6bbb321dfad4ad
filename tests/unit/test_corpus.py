"""The real-measurement corpus (tests/corpus): provenance, privacy, and the engine's verdicts.

Every measurement has its origin recorded, a file that still matches its SHA-256, no probe
address but OONI's placeholder, an adjudicated verdict the engine reaches, and, where we
deliberately differ from OONI's recorded verdict, a reason in the manifest and a row in
docs/verdicts.md.
"""

from __future__ import annotations

import json
import re

import pytest

from probe.analysis import analyze
from tests import corpus

ENTRIES = corpus.entries()
IDS = [e.id for e in ENTRIES]
DOCS = corpus.REPO / "docs" / "verdicts.md"
#: the lab's volunteer (cp-client); a measurement captured there must never carry it
LAB_CLIENT = "198.18.0.2"


def test_manifest_lists_each_measurement_once_with_its_origin() -> None:
    assert len(IDS) == len(set(IDS))
    assert sum(e.kind == "real" for e in ENTRIES) >= 25
    for e in ENTRIES:
        assert e.kind in corpus.KINDS, e.id
        assert e.origin and e.origin_path and e.licence and e.what, e.id
        assert re.fullmatch(r"[0-9a-f]{40}", e.commit), e.id
        assert e.expected.get("x_outcome"), e.id
        assert e.path.exists(), f"{e.id}: {e.path}"
        assert corpus.digest(e) == e.sha256, f"{e.id}: the file changed"
        if e.kind == "golden":
            assert e.anchor, e.id


def test_every_committed_file_is_in_the_manifest() -> None:
    listed = {e.path.resolve() for e in ENTRIES if e.location == "corpus"}
    on_disk = {
        p.resolve()
        for sub in ("real", "golden")
        for p in (corpus.HERE / sub).rglob("*")
        if p.is_file()
    }
    assert on_disk == listed


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_no_probe_address_but_the_placeholder(entry: corpus.Entry) -> None:
    text = corpus.read_text(entry)
    assert set(re.findall(r'"probe_ip"\s*:\s*"([^"]*)"', text)) <= {"127.0.0.1"}, entry.id
    if entry.location == "corpus":
        assert LAB_CLIENT not in text, entry.id


def test_a_reason_exactly_where_we_differ_from_ooni() -> None:
    documented = _documented()
    for e in ENTRIES:
        if e.kind != "real":
            continue
        differs = corpus.ooni_verdict(corpus.load(e)) != e.expected_pair
        assert bool(e.reason) == differs, e.id
        if differs:
            assert e.id in documented, f"{e.id}: missing from docs/verdicts.md"


def test_the_engine_reaches_every_adjudicated_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    scored = corpus.score(analyze)
    with capsys.disabled():
        print("\n" + corpus.summary(scored))
    wrong = [s.entry.id for s in scored if not s.agrees_with_expected]
    assert wrong == []
    for s in scored:
        assert s.ours["x_rule_id"] != "internal.error", s.entry.id


def test_measurements_are_web_connectivity_json() -> None:
    for e in ENTRIES:
        m = corpus.load(e)
        assert m.get("test_name") == "web_connectivity", e.id
        json.dumps(m)


def _documented() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Disagreements with OONI on real measurements", 1)[1]
    section = section.split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z0-9_.-]+)` \|", section, flags=re.MULTILINE))


def test_docs_list_only_real_disagreements() -> None:
    differing = {
        e.id
        for e in ENTRIES
        if e.kind == "real" and corpus.ooni_verdict(corpus.load(e)) != e.expected_pair
    }
    assert _documented() == differing


def test_our_goldens_load_strictly_with_oonidata() -> None:
    """The run facts and the follow-up's events keep our measurements OONI's format."""
    from tests.conformance.check import check_with_oonidata

    lines = [corpus.read_text(e) for e in ENTRIES if e.kind == "golden"]
    assert check_with_oonidata([json.dumps(json.loads(t)) for t in lines]) == []
