"""The real-measurement corpus: measurements nobody here wrote, each with an adjudicated verdict.

``manifest.toml`` lists every measurement once: where the file is (``file``, under this
folder, or ``shared``, under ``../shared/data``, which is read from there and never copied),
where it came from (``origin`` repository, ``origin_path``, ``commit``, ``licence``, and
``extract`` when the measurement is a field of a bigger file), its SHA-256, what it shows, and
the ``expected`` verdict we adjudicated (``blocking``, ``accessible``, ``x_outcome``). Where
that verdict differs from the one OONI's probe recorded in the measurement, ``reason`` says
why in one line; ``anchor`` names the item of issue 16 a measurement anchors. Every one is a
measurement of a real network, published by OONI (our own captures are goldens of the lab and
targeted tiers, tests/goldens).

The engine is run with our bundled fingerprints merged with OONI's and Censored Planet's
(``../shared/data/fingerprints``): the configuration a researcher uses on OONI data, on
:func:`measurement` (OONI's verdict keys stripped first). The derived goldens are a tier of
tests/goldens (``corpus/<id>/``: ``python -m tests.goldens`` writes them);
``tests/unit/test_corpus.py`` checks provenance and that the committed verdicts are the
adjudicated ones; :func:`score` gives, per measurement, our verdict, OONI's and the
adjudicated one, and ``make bench`` prints the agreement (:func:`summary`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO / ".." / "shared" / "data"
MANIFEST = HERE / "manifest.toml"

Verdict = tuple[Any, Any]


@dataclass(frozen=True)
class Entry:
    id: str
    path: Path
    location: str  # "corpus" | "shared"
    origin: str
    origin_path: str
    commit: str
    licence: str
    sha256: str
    what: str
    expected: dict[str, Any]
    reason: str = ""
    extract: str = ""
    anchor: str = ""
    wrap: dict[str, Any] = field(default_factory=dict)

    @property
    def expected_pair(self) -> Verdict:
        return _literal(self.expected.get("blocking")), _literal(self.expected.get("accessible"))


def _literal(value: Any) -> Any:
    """TOML has no null: the string "null" stands for JSON null."""
    return None if value == "null" else value


def entries(path: Path = MANIFEST) -> list[Entry]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for raw in data.get("measurement", []):
        raw = dict(raw)
        if "file" in raw:
            location, where = "corpus", HERE / raw.pop("file")
        else:
            location, where = "shared", SHARED / raw.pop("shared")
        out.append(Entry(path=where, location=location, **raw))
    return out


def read_text(entry: Entry) -> str:
    text = entry.path.read_text(encoding="utf-8")
    if entry.path.suffix == ".jsonc":  # probe-cli's JSONC: a leading comment block
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return text


def load(entry: Entry) -> dict[str, Any]:
    """The measurement; a file holding only test keys is wrapped with ``wrap``'s keys."""
    data: dict[str, Any] = json.loads(read_text(entry))
    if "test_keys" not in data:
        data = {"test_name": "web_connectivity", "test_keys": data, **entry.wrap}
    return data


def measurement(entry: Entry) -> dict[str, Any]:
    """What the engine is given: the measurement without OONI's verdict keys."""
    return strip_verdict(load(entry))


def digest(entry: Entry) -> str:
    return hashlib.sha256(entry.path.read_bytes()).hexdigest()


def ooni_verdict(measurement: Mapping[str, Any]) -> Verdict:
    """(blocking, accessible) as OONI's probe wrote them (None/None for null test keys)."""
    tk = measurement.get("test_keys")
    if not isinstance(tk, Mapping):
        return None, None
    return tk.get("blocking"), tk.get("accessible")


def fingerprints() -> Any:
    from probe.analysis.fingerprints import builtin, load_directory

    return builtin().merged(load_directory(SHARED / "fingerprints"))


@dataclass(frozen=True)
class Scored:
    entry: Entry
    ours: dict[str, Any]
    ooni: Verdict

    @property
    def pair(self) -> Verdict:
        return self.ours["blocking"], self.ours["accessible"]

    @property
    def agrees_with_ooni(self) -> bool:
        return self.pair == self.ooni

    @property
    def agrees_with_expected(self) -> bool:
        return (
            self.pair == self.entry.expected_pair
            and self.ours["x_outcome"] == self.entry.expected["x_outcome"]
        )


def score(analyze: Callable[..., dict[str, Any]]) -> list[Scored]:
    """Run ``analyze(measurement, fingerprints=...)`` (the verdict keys stripped first) over
    every measurement."""
    fps = fingerprints()
    out = []
    for entry in entries():
        ooni = ooni_verdict(load(entry))
        out.append(Scored(entry, analyze(measurement(entry), fingerprints=fps), ooni))
    return out


#: the keys an analysis writes; removed before analysing so nothing of OONI's verdict is read
VERDICT_KEYS = (
    "blocking", "accessible", "dns_consistency", "x_status", "body_length_match",
    "body_proportion", "headers_match", "status_code_match", "title_match",
)  # fmt: skip


def strip_verdict(measurement: dict[str, Any]) -> dict[str, Any]:
    tk = measurement.get("test_keys")
    if not isinstance(tk, dict):
        return measurement
    kept = {
        k: v
        for k, v in tk.items()
        if k not in VERDICT_KEYS and not (k.startswith("x_") and k.endswith("_flags"))
    }
    return {**measurement, "test_keys": kept}


def summary(scored: list[Scored]) -> str:
    """Agreement figures and the per-measurement table (printed by tests and ``make bench``)."""
    adj = sum(s.agrees_with_expected for s in scored)
    ooni = sum(s.agrees_with_ooni for s in scored)
    n = len(scored)
    lines = [
        f"real corpus: {n} measurements; agreement with OONI's recorded verdict {ooni}/{n}, "
        f"with the adjudicated verdict {adj}/{n}"
    ]
    lines.append(f"{'measurement':44} {'OONI':22} {'adjudicated':22} {'ours':22} x_outcome")
    for s in scored:
        mark = "  " if s.agrees_with_expected else "XX"
        lines.append(
            f"{mark}{s.entry.id:42} {s.ooni!s:22} {s.entry.expected_pair!s:22} "
            f"{s.pair!s:22} {s.ours['x_outcome']}"
        )
    return "\n".join(lines)
