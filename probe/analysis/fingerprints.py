"""Blocking fingerprints: named patterns that identify blockpages and blockpage IPs (pure).

Three on-disk formats are understood; nothing is loaded implicitly (callers pass a
:class:`Fingerprints` to :func:`probe.analysis.analyze`):

- OONI's ``fingerprints_{dns,http}.csv`` (ooni/blocking-fingerprints): one row per pattern with
  ``location_found`` (``dns``, ``body``, ``header.<name>``) and ``pattern_type`` (``full``,
  ``prefix``, ``contains``, ``regexp``). Scope ``fp`` marks a known false positive.
- Censored Planet's JSONL signatures (``{"fingerprint", "pattern"}`` per line): Python regexes
  compiled with ``re.DOTALL`` and searched in the reconstructed page (status line, headers, blank
  line, body). Every signature of ``false_positive_signatures.json`` has scope ``fp``.
- Our own JSON file (``probe/data/fingerprints/*.json``): ``{"version", "fingerprints": [...]}``
  whose items carry the OONI columns under short names (see :func:`load_ours`).

Matching: false positives are checked FIRST; any false-positive hit vetoes every blockpage hit on
the same page (Censored Planet's rule). Scope ``prov`` (a platform obeying a takedown) is not
network interference and never counts as a blockpage.

Speed: every regex gets a *needle* at load time (:mod:`probe.analysis.needles`), a substring that
each of its matches contains; a text without the needle is rejected with one ``in`` test instead
of a regex search. The needle only ever rejects texts the regex cannot match, so the ordered scan
and the winning fingerprint are exactly those of a plain search. The reconstructed page is only
built when a page fingerprint gets that far.

With OONI's and Censored Planet's sets (about 2,400 HTTP fingerprints), even one ``in`` test each
costs some 300 us per response. When the ``ahocorasick-rs`` package is installed (the research
extra), a set is *indexed*: one Aho-Corasick automaton holds every ``contains`` body pattern and
every case-sensitive needle, one pass over the page finds all of their occurrences, and only the
fingerprints those occurrences name (plus the few without an exact literal, and those of the
headers the response has) are tried, still in the set's order, the first hit still winning;
each regex is searched from just before its needle's first occurrence. The result is the same as
the plain scan's (a property test compares them).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from probe.analysis.needles import Needle, needle_of

try:  # optional (the research extra): the multi-pattern index of large sets
    _AHOCORASICK: Any = importlib.import_module("ahocorasick_rs")
except ImportError:  # pragma: no cover - without the research extra (= index=False)
    _AHOCORASICK = None

#: below this many HTTP fingerprints the plain scan is as fast as the index
_INDEX_FROM = 64

#: scopes that identify interference; ``fp`` vetoes, ``prov`` is ignored
BLOCKING_SCOPES = frozenset({"nat", "isp", "prod", "inst", "vbw", "injb", "unk"})
_CP_SCOPES = {"a": "prod", "b": "nat", "c": "isp", "d": "inst", "e": "unk", "f": "vbw"}
PATTERN_TYPES = frozenset({"full", "prefix", "contains", "regexp"})


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One named pattern. ``location`` is ``dns``, ``body``, ``page`` or ``header.<name>``."""

    fid: str
    scope: str
    location: str
    pattern_type: str
    pattern: str
    countries: tuple[str, ...] = ()
    source: str = ""
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # explicit, as this module may be compiled (probe.native), and a frozen dataclass
        # compiled by mypyc cannot be unpickled field by field (the pool and Dask pickle it)
        return Fingerprint, tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    @property
    def is_false_positive(self) -> bool:
        return self.scope == "fp"

    def matches(self, text: str, start: int = 0) -> bool:
        """Whether the pattern is in ``text``; a regex is searched from ``start`` (a position
        before which no match can begin, see ``Needle.start``)."""
        if self.pattern_type == "full":
            return text == self.pattern
        if self.pattern_type == "prefix":
            return text.startswith(self.pattern)
        if self.pattern_type == "contains":
            return self.pattern in text
        return self.regex is not None and self.regex.search(text, start) is not None


def make_fingerprint(
    fid: str,
    scope: str,
    location: str,
    pattern_type: str,
    pattern: str,
    *,
    countries: Iterable[str] = (),
    source: str = "",
) -> Fingerprint | None:
    """A validated :class:`Fingerprint`, or None if the row is unusable (bad regex, type...)."""
    if pattern_type not in PATTERN_TYPES or not pattern or not fid:
        return None
    regex = None
    if pattern_type == "regexp":
        try:
            regex = re.compile(pattern, re.DOTALL)
        except (re.error, RecursionError, OverflowError):
            return None
    loc = location.strip().lower()
    if loc != "dns" and loc != "body" and loc != "page" and not loc.startswith("header."):
        return None
    ccs = tuple(c.strip().upper() for c in countries if c.strip())
    return Fingerprint(fid, scope.strip().lower(), loc, pattern_type, pattern, ccs, source, regex)


#: read-only by convention, not frozen, with a written-out ``__init__``: compiled, it is
#: native code (see probe.analysis.observations)
@dataclass(slots=True, init=False)
class PageMatch:
    """Result of matching one HTTP response: the blockpage hit, and the false-positive veto."""

    blockpage: Fingerprint | None
    false_positive: Fingerprint | None

    def __init__(
        self,
        blockpage: Fingerprint | None,
        false_positive: Fingerprint | None,
    ) -> None:
        self.blockpage = blockpage
        self.false_positive = false_positive


class Fingerprints:
    """An immutable, indexed set of fingerprints with a version string."""

    def __init__(self, items: Iterable[Fingerprint], *, version: str, index: bool = True) -> None:
        """``index``: build the Aho-Corasick index when the set is large and ``ahocorasick-rs``
        is installed (the matches are the same either way)."""
        self.version = version
        self.items: tuple[Fingerprint, ...] = tuple(items)
        self._indexing = index
        dns: dict[str, list[Fingerprint]] = {}
        for fp in self.items:
            if fp.location == "dns" and fp.pattern_type == "full":
                dns.setdefault(fp.pattern, []).append(fp)
        self._dns = {k: tuple(v) for k, v in dns.items()}
        self._http_fp = tuple(
            _prepare(f) for f in self.items if f.location != "dns" and f.is_false_positive
        )
        self._http_block = tuple(
            _prepare(f) for f in self.items if f.location != "dns" and f.scope in BLOCKING_SCOPES
        )
        self._index: _Index | None = None
        if index and _AHOCORASICK is not None:
            if len(self._http_fp) + len(self._http_block) >= _INDEX_FROM:
                self._index = _Index(self._http_fp, self._http_block)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # rebuilt from the items (the indexes are derived), also when compiled (probe.native)
        return _rebuild, (self.items, self.version, self._indexing)

    def __len__(self) -> int:
        return len(self.items)

    def merged(self, other: Fingerprints) -> Fingerprints:
        return Fingerprints(self.items + other.items, version=f"{self.version}+{other.version}")

    def match_dns(self, ip: str, *, probe_cc: str = "ZZ") -> Fingerprint | None:
        """The blockpage-IP fingerprint for ``ip`` expected in ``probe_cc`` (or global), if any."""
        for fp in self._dns.get(ip, ()):
            if fp.scope not in BLOCKING_SCOPES:
                continue
            cc = probe_cc.upper()
            if not fp.countries or "ZZ" in fp.countries or cc == "ZZ" or cc in fp.countries:
                return fp
        return None

    def match_http(
        self, *, status: int, reason: str = "", headers: Sequence[tuple[str, str]], body: str
    ) -> PageMatch:
        """Match one response; false positives first, and a false-positive hit vetoes."""
        if not self._http_fp and not self._http_block:
            return PageMatch(None, None)
        hdrs: dict[str, list[str]] = {}
        for name, value in headers:
            hdrs.setdefault(name.lower(), []).append(value)
        texts = _Texts(status, reason, headers, body)
        if self._index is not None:
            found = self._index.match(texts, hdrs)
            if found is not None:
                return found
        for prepared in self._http_fp:
            if _hit(prepared, texts, hdrs):
                return PageMatch(None, prepared[0])
        for prepared in self._http_block:
            if _hit(prepared, texts, hdrs):
                return PageMatch(prepared[0], None)
        return PageMatch(None, None)


class _Index:
    """The Aho-Corasick index of a large set (see the module docstring)."""

    def __init__(self, fp: Sequence[_Prepared], block: Sequence[_Prepared]) -> None:
        keys: dict[str, int] = {}
        #: per group (false positives, then blocking): its fingerprints, those to try always,
        #: and those to try by header name (``by_key``: those a pattern key names)
        self.groups: list[tuple[Sequence[_Prepared], list[int], dict[str, list[int]]]] = []
        self.by_key: list[list[tuple[int, int]]] = []  # key -> (group, item)
        for g, items in enumerate((fp, block)):
            always: list[int] = []
            by_header: dict[str, list[int]] = {}
            for i, (f, header, needle) in enumerate(items):
                literals: tuple[str, ...] = ()
                if header:
                    by_header.setdefault(header, []).append(i)
                    continue
                if f.pattern_type == "contains":
                    literals = (f.pattern,)
                elif needle is not None and not needle.fold and needle.texts:
                    literals = needle.texts
                if not literals:
                    always.append(i)
                    continue
                for text in literals:
                    key = keys.get(text)
                    if key is None:
                        key = keys[text] = len(keys)
                        self.by_key.append([])
                    self.by_key[key].append((g, i))
            self.groups.append((items, always, by_header))
        self.keys = keys
        self.automaton: Any = _AHOCORASICK.AhoCorasick(list(keys))

    def match(self, texts: _Texts, headers: dict[str, list[str]]) -> PageMatch | None:
        """The match, or None for a page the automaton cannot read (a lone surrogate: the
        caller then runs the plain scan)."""
        page = texts.page
        body_at = len(page) - len(texts.body)
        try:
            found = self.automaton.find_matches_as_indexes(page, overlapping=True)
        except UnicodeError:
            return None
        #: key -> first start in the page, first start in the body part (-1: none)
        first: dict[int, list[int]] = {}
        for key, start, _end in found:
            seen = first.get(key)
            if seen is None:
                seen = first[key] = [start, -1]
            elif start < seen[0]:
                seen[0] = start
            if start >= body_at and (seen[1] < 0 or start < seen[1]):
                seen[1] = start
        named: list[set[int]] = [set(), set()]
        for key in first:
            for g, i in self.by_key[key]:
                named[g].add(i)
        for g, (items, always, by_header) in enumerate(self.groups):
            tried = named[g]
            tried.update(always)
            for name in headers:
                tried.update(by_header.get(name, ()))
            for i in sorted(tried):
                prepared = items[i]
                if self._hit(prepared, texts, headers, first, body_at):
                    return PageMatch(None, prepared[0]) if g == 0 else PageMatch(prepared[0], None)
        return PageMatch(None, None)

    def _hit(
        self,
        prepared: _Prepared,
        texts: _Texts,
        headers: dict[str, list[str]],
        first: dict[int, list[int]],
        body_at: int,
    ) -> bool:
        fp, header, needle = prepared
        if header or needle is None or needle.fold or fp.pattern_type != "regexp":
            return _hit(prepared, texts, headers)
        in_body = fp.location == "body"
        earliest = -1
        for text in needle.texts:
            seen = first.get(self.keys[text])
            if seen is None:
                continue
            at = seen[1] - body_at if in_body and seen[1] >= 0 else (-1 if in_body else seen[0])
            if at >= 0 and (earliest < 0 or at < earliest):
                earliest = at
        if earliest < 0:
            return False
        return fp.matches(texts.body if in_body else texts.page, needle.search_from(earliest))


def _rebuild(items: tuple[Fingerprint, ...], version: str, index: bool = True) -> Fingerprints:
    return Fingerprints(items, version=version, index=index)


#: a fingerprint ready for matching: itself, the header it reads (or "" for body / page), and
#: the needle of its regex (None: no cheap test, always search)
_Prepared = tuple[Fingerprint, str, Needle | None]


def _prepare(fp: Fingerprint) -> _Prepared:
    header = fp.location[len("header.") :] if fp.location.startswith("header.") else ""
    return fp, header, needle_of(fp.regex) if fp.regex is not None else None


class _Texts:
    """The texts of one response, the page and the lower-case forms built on first use."""

    __slots__ = ("_status", "_reason", "_headers", "body", "_page", "_lower")

    def __init__(
        self, status: int, reason: str, headers: Sequence[tuple[str, str]], body: str
    ) -> None:
        self._status, self._reason, self._headers, self.body = status, reason, headers, body
        self._page: str | None = None
        #: (text, its lower()) for the texts lowered so far: a handful (body, page, header
        #: values), found by identity; a dict hashed each new page, a tenth of the lowering
        self._lower: list[tuple[str, str]] = []

    @property
    def page(self) -> str:
        if self._page is None:
            self._page = reconstruct_page(self._status, self._reason, self._headers, self.body)
        return self._page

    def lower(self, text: str) -> str:
        for seen, low in self._lower:
            if seen is text:
                return low
        low = text.lower()
        self._lower.append((text, low))
        return low


def _hit(prepared: _Prepared, texts: _Texts, headers: dict[str, list[str]]) -> bool:
    fp, header, needle = prepared
    if header:
        values: Sequence[str] = headers.get(header, ())
    elif fp.location == "body":
        values = (texts.body,)
    else:
        values = (texts.page,)
    for text in values:
        start = 0 if needle is None else needle.start(text, texts.lower)
        if start >= 0 and fp.matches(text, start):
            return True
    return False


def reconstruct_page(
    status: int, reason: str, headers: Sequence[tuple[str, str]], body: str
) -> str:
    """Status line + ``Name: value`` lines + blank line + body (Censored Planet's page text)."""
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return "\r\n".join(lines) + "\r\n\r\n" + body


# --------------------------------------------------------------------------------------- loaders


def parse_ooni_csv(text: str, *, source: str = "ooni") -> list[Fingerprint]:
    """Rows of OONI's CSV (quoted multi-line fields allowed); unusable rows are skipped."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        fp = make_fingerprint(
            (row.get("name") or "").strip(),
            row.get("scope") or "",
            row.get("location_found") or "",
            (row.get("pattern_type") or "").strip(),
            row.get("pattern") or "",
            countries=(row.get("expected_countries") or "").split(","),
            source=source,
        )
        if fp is not None:
            out.append(fp)
    return out


def parse_censoredplanet_jsonl(
    text: str, *, false_positive: bool, source: str = "censoredplanet"
) -> list[Fingerprint]:
    """Censored Planet signatures (one JSON object per line, blank lines allowed)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        fid, pattern = str(obj.get("fingerprint", "")), str(obj.get("pattern", ""))
        scope = "fp" if false_positive else _CP_SCOPES.get(fid[:1], "unk")
        fp = make_fingerprint(f"cp:{fid}", scope, "page", "regexp", pattern, source=source)
        if fp is not None:
            out.append(fp)
    return out


def parse_ours(text: str) -> Fingerprints:
    """Our JSON format: ``{"version": str, "fingerprints": [{"id", "scope", "location",
    "type", "pattern", "countries": [...]}, ...]}``."""
    data = json.loads(text)
    items = []
    for obj in data.get("fingerprints", []):
        fp = make_fingerprint(
            str(obj.get("id", "")),
            str(obj.get("scope", "")),
            str(obj.get("location", "")),
            str(obj.get("type", "")),
            str(obj.get("pattern", "")),
            countries=[str(c) for c in obj.get("countries", [])],
            source="censorprobe",
        )
        if fp is not None:
            items.append(fp)
    return Fingerprints(items, version=f"censorprobe-{data.get('version', '?')}")


#: file names inside a fingerprints directory (what ``probe fingerprints update`` writes)
OONI_DNS_FILE = "fingerprints_dns.csv"
OONI_HTTP_FILE = "fingerprints_http.csv"
CP_BLOCKPAGE_FILE = "censoredplanet/blockpage_signatures.json"
CP_FALSE_POSITIVE_FILE = "censoredplanet/false_positive_signatures.json"


def load_directory(path: Path) -> Fingerprints:
    """Every known fingerprint file present in ``path`` (OONI CSVs, Censored Planet JSONL)."""
    items: list[Fingerprint] = []
    found = []
    for name in (OONI_DNS_FILE, OONI_HTTP_FILE):
        f = path / name
        if f.is_file():
            items += parse_ooni_csv(f.read_text(encoding="utf-8"))
            found.append(name)
    for name, is_fp in ((CP_FALSE_POSITIVE_FILE, True), (CP_BLOCKPAGE_FILE, False)):
        f = path / name
        if f.is_file():
            items += parse_censoredplanet_jsonl(f.read_text(encoding="utf-8"), false_positive=is_fp)
            found.append(name)
    return Fingerprints(items, version=f"dir:{path.name}:{len(found)}files")


def builtin() -> Fingerprints:
    """Our own fingerprints shipped as package data (``probe/data/fingerprints/*.json``)."""
    merged = Fingerprints((), version="builtin")
    folder = resources.files("probe") / "data" / "fingerprints"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            merged = merged.merged(parse_ours(entry.read_text(encoding="utf-8")))
    return merged
