"""The derived tiers of a measurement, and where every golden case lives (pure, no I/O but files).

:func:`observations` is what each test's analysis reads: the web's flat observations
(:func:`probe.analysis.observations.observe`; with the packet rows too when the measurement
carries ``x_packet``), the packet-level test's rows per trace, role and TTL
(:func:`probe.analysis.packet.observations`), the app engine's per-(host, port) entries
(:func:`probe.apps.facts.entries`) or, for OONI's app data without our plan, OONI's status keys
read back. :func:`verdict` is the test's verdict keys, through the registry, with the bundled
fingerprints (what ``probe run`` and ``probe analyze`` use). Long texts (page bodies) are kept
as their length and SHA-256 so that the files stay reviewable.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

from probe import registry
from probe.analysis.fingerprints import Fingerprints, builtin, load_directory
from probe.analysis.observations import observe
from probe.analysis.packet import observations as packet_rows
from probe.apps.facts import entries
from probe.apps.ooni import blocked_components, status_known
from tests import corpus

REPO = Path(__file__).resolve().parents[2]
GOLDENS = REPO / "tests" / "goldens"
SHARED = REPO / ".." / "shared" / "data"
QA = SHARED / "ooni-qa"
SAMPLES = SHARED / "ooni-samples"
#: texts longer than this are kept as length + digest
LONG_TEXT = 512

MEASUREMENT, OBSERVATIONS, VERDICT = "measurement.json", "observations.json", "verdict.json"


#: cases whose verdict also uses OONI's and Censored Planet's fingerprints (../shared, read
#: from there): the bundled set has no DNS fingerprint, so dns.blockpage_ip needs OONI's
WITH_SHARED_FINGERPRINTS = frozenset({"targeted/dns-answer-is-a-known-blockpage-address"})


@cache
def fingerprints(shared: bool = False) -> Fingerprints:
    """The bundled fingerprints (what ``probe run`` uses), plus ../shared's when asked."""
    if shared:
        return builtin().merged(load_directory(SHARED / "fingerprints"))
    return builtin()


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, sets and bytes as JSON values; long texts as length + digest."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, bytes):
        if len(value) > LONG_TEXT:
            return {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, str) and len(value) > LONG_TEXT:
        data = value.encode("utf-8", "surrogatepass")
        return {"text": len(value), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(value, float) and value != value:  # NaN
        return "NaN"
    return value


def observations(measurement: Mapping[str, Any]) -> Any:
    """The observation tier of ``measurement`` (see the module docstring)."""
    name = measurement.get("test_name")
    raw_keys = measurement.get("test_keys")
    if name == registry.WEB_CONNECTIVITY:
        if isinstance(raw_keys, Mapping) and "x_packet" in raw_keys:
            return {"web": jsonable(observe(measurement)), "x_packet": packet_rows(measurement)}
        return jsonable(observe(measurement))
    if name == registry.CENSOR_TRACE:
        return {"packet": packet_rows(measurement)}
    raw = measurement.get("test_keys")
    tk: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if isinstance(tk.get("x_app_hosts"), list):
        return {"entries": jsonable(entries(tk))}
    return {
        "ooni_status_known": status_known(str(name), tk),
        "ooni_blocked": jsonable(blocked_components(str(name), tk, tk)),
    }


def verdict(measurement: Mapping[str, Any], *, shared: bool = False) -> dict[str, Any]:
    test = registry.lookup(measurement.get("test_name"))
    assert test is not None, measurement.get("test_name")
    fps = fingerprints(shared)
    keys: dict[str, Any] = jsonable(test.analyze(measurement, fingerprints=fps))
    return keys


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Case:
    """One golden case: where its measurement is, where its derived files go."""

    tier: str
    name: str
    #: the measurement file (in tests/goldens, or in ../shared for third-party data)
    source: Path
    #: for a JSONL source, the line (1-based); None: the file is one document
    line: int | None = None
    #: the verdict also uses ../shared's fingerprints (OONI's and Censored Planet's)
    shared: bool = False
    #: observations.json too (False: another tier keeps this measurement's observations)
    observations: bool = True
    #: how the measurement is read, when not from ``source`` as it is
    reader: Callable[[], dict[str, Any]] | None = None

    @property
    def directory(self) -> Path:
        return GOLDENS / self.tier / self.name

    @property
    def id(self) -> str:
        return f"{self.tier}/{self.name}"

    def measurement(self) -> dict[str, Any]:
        if self.reader is not None:
            return self.reader()
        text = self.source.read_text(encoding="utf-8")
        if self.line is not None:
            text = text.splitlines()[self.line - 1]
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("raw_measurement"), dict):
            data = data["raw_measurement"]
        assert isinstance(data, dict), self.id
        return data

    def derived(self) -> dict[str, str]:
        """The derived files' contents, recomputed now."""
        m = self.measurement()
        shared = self.shared or self.id in WITH_SHARED_FINGERPRINTS
        out = {OBSERVATIONS: dumps(observations(m))} if self.observations else {}
        out[VERDICT] = dumps(verdict(m, shared=shared))
        return out


def _own(tier: str) -> Iterator[Case]:
    for directory in sorted((GOLDENS / tier).glob("*/")):
        if (directory / MEASUREMENT).is_file():
            yield Case(tier, directory.name, directory / MEASUREMENT)


def _qa() -> Iterator[Case]:
    for directory in sorted(QA.glob("*/")):
        if (directory / MEASUREMENT).is_file():
            yield Case("ooni-qa", directory.name, directory / MEASUREMENT)


def _is_analysed(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if isinstance(data, dict) and isinstance(data.get("raw_measurement"), dict):
        data = data["raw_measurement"]
    return isinstance(data, dict) and registry.lookup(data.get("test_name")) is not None


def _samples() -> Iterator[Case]:
    files = sorted(SAMPLES.glob("*.json*")) + sorted((SAMPLES / "edge-cases").glob("*.json*"))
    for path in files:
        stem = path.name.removesuffix(".jsonl").removesuffix(".json")
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if _is_analysed(line):
                    yield Case("ooni-samples", f"{stem}-{n}", path, n)
        elif _is_analysed(path.read_text(encoding="utf-8")):
            yield Case("ooni-samples", stem, path)


def _corpus() -> Iterator[Case]:
    """The real corpus (tests/corpus): verdicts with ../shared's fingerprints merged, as the
    corpus is adjudicated; observations only for the files committed there (the others are
    shared samples or QA cases, whose observations those tiers keep)."""
    for entry in corpus.entries():
        yield Case(
            "corpus", entry.id, entry.path, shared=True,
            observations=entry.location == "corpus",
            reader=partial(corpus.measurement, entry),
        )  # fmt: skip


#: every tier, in the order of cases()
TIERS = ("lab", "targeted", "ooni-qa", "ooni-samples", "corpus")


def cases() -> list[Case]:
    """Every golden case, in a stable order."""
    return [*_own("lab"), *_own("targeted"), *_qa(), *_samples(), *_corpus()]


def diff(case: Case, name: str, new: str) -> str:
    """A unified diff of ``case``'s file ``name`` against ``new`` ("" when equal)."""
    path = case.directory / name
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old == new:
        return ""
    label = f"tests/goldens/{case.id}/{name}"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), label, label, n=2
    )
    return "".join(lines)


#: the golden of a followed-up web scenario as `probe run --packet-level` writes it
PACKET_LEVEL_SUFFIX = "+packet-level"


def packet_level_cases() -> dict[str, str]:
    """Golden name -> URL of every web scenario `probe run --packet-level` follows up in the lab
    (tests/lab/demo_packet.py ``FOLLOWED_HOPS``), named after its first scenario."""
    from tests.lab import model as m
    from tests.lab.demo_packet import FOLLOWED_HOPS

    _, scenarios = m.load()
    first: dict[str, str] = {}
    for s in scenarios:
        first.setdefault(s.url, s.id)
    return {f"{first[url]}{PACKET_LEVEL_SUFFIX}": url for url in FOLLOWED_HOPS}
