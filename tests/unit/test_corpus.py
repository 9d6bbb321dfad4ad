"""The real-measurement corpus (tests/corpus): provenance, privacy, and the adjudicated verdicts.

Every measurement has its origin recorded, a file that still matches its SHA-256, no probe
address but OONI's placeholder, and, where we deliberately differ from OONI's recorded
verdict, a reason in the manifest and a row in docs/verdicts.md. Its derived goldens are the
``corpus`` tier of tests/goldens (recomputed exactly by tests/unit/test_goldens.py, like every
tier); here each committed verdict must be the adjudicated one, as the lab goldens must reach
their scenarios' verdicts.
"""

from __future__ import annotations

import json
import re

import pytest

from tests import corpus
from tests.goldens import tiers

ENTRIES = corpus.entries()
IDS = [e.id for e in ENTRIES]
DOCS = corpus.REPO / "docs" / "verdicts.md"
#: the lab's volunteer (cp-client); a measurement captured there must never carry it
LAB_CLIENT = "198.18.0.2"


def test_manifest_lists_each_measurement_once_with_its_origin() -> None:
    assert len(IDS) == len(set(IDS))
    assert len(ENTRIES) >= 25
    for e in ENTRIES:
        assert e.origin and e.origin_path and e.licence and e.what, e.id
        assert re.fullmatch(r"[0-9a-f]{40}", e.commit), e.id
        assert e.expected.get("x_outcome"), e.id
        assert e.path.exists(), f"{e.id}: {e.path}"
        assert corpus.digest(e) == e.sha256, f"{e.id}: the file changed"


def test_every_committed_file_is_in_the_manifest() -> None:
    listed = {e.path.resolve() for e in ENTRIES if e.location == "corpus"}
    on_disk = {p.resolve() for p in (corpus.HERE / "real").rglob("*") if p.is_file()}
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
        differs = corpus.ooni_verdict(corpus.load(e)) != e.expected_pair
        assert bool(e.reason) == differs, e.id
        if differs:
            assert e.id in documented, f"{e.id}: missing from docs/verdicts.md"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_the_committed_verdict_is_the_adjudicated_one(entry: corpus.Entry) -> None:
    path = tiers.GOLDENS / "corpus" / entry.id / tiers.VERDICT
    v = json.loads(path.read_text(encoding="utf-8"))
    assert (v["blocking"], v["accessible"], v["x_outcome"]) == (
        *entry.expected_pair, entry.expected["x_outcome"],
    ), entry.id  # fmt: skip
    assert v["x_rule_id"] != "internal.error", entry.id


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
    differing = {e.id for e in ENTRIES if corpus.ooni_verdict(corpus.load(e)) != e.expected_pair}
    assert _documented() == differing
