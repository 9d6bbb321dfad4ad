"""Needles: a substring every match of a regex must contain, to reject texts cheaply (pure).

A blockpage set holds about a thousand regexes, nearly all of them literal text, and almost
every response matches none of them. Searching each regex costs a scan of the text per regex;
``needle in text`` costs far less (and an ASCII-only text can never contain a Cyrillic needle).
:func:`needle_of` reads the regex's own parse tree (the standard library's parser, the one
``re.compile`` uses) and keeps the longest run of literal characters that every match contains:
literals at the top level, inside plain groups and inside repeats of at least one. It never
guesses: anything it does not understand (branches, classes, lookarounds, groups with their own
flags) ends a run, and a regex without a usable run gets no needle (it is always searched).

Case-insensitive regexes (``(?i)``): the needle is lower-cased and looked for in the text's
``lower()``. That is exact unless the text holds one of the needle's *unfoldable* characters:
those ``re`` matches with a needle character although their ``lower()`` is another character
(U+0130 and U+0131 for ``i``, U+017F for ``s``, U+1C81 for ``д``...; :func:`unfoldable`, checked
against ``re`` over all of Unicode by a test). A text holding one is searched with the needle's
own regex. A needle character that no ASCII character matches (Cyrillic, say) proves that an
ASCII-only text cannot match.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# the parser behind ``re.compile``; ``sre_parse`` is its deprecated alias
_parser: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("_sre")

_REPEATS = frozenset(
    getattr(_parser, name)
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
    if hasattr(_parser, name)
)
_ASCII = [chr(i) for i in range(128)]
#: ``re``'s extra case-insensitive equivalences (lower-case code point -> the others)
_EXTRA: dict[int, tuple[int, ...]] = importlib.import_module("re._casefix")._EXTRA_CASES


#: the needle characters whose ``re`` equivalents are computed here (and tested over all of
#: Unicode): up to Latin Extended-A, Greek and Cyrillic
_KNOWN = re.compile(r"[\x00-\u017f\u0370-\u03ff\u0400-\u052f]*")


@lru_cache(maxsize=1)
def _lowered_from() -> dict[int, tuple[str, ...]]:
    """code point -> the other BMP characters whose simple lower case (``re``'s) it is."""
    out: dict[int, list[str]] = {}
    for cp in range(0x10000):
        low = _sre.unicode_tolower(cp)
        if low != cp:
            out.setdefault(low, []).append(chr(cp))
    return {low: tuple(chars) for low, chars in out.items()}


@lru_cache(maxsize=4096)
def _unfoldable_for(char: str) -> str:
    low = _sre.unicode_tolower(ord(char))
    # re matches x with char when x lower-cases (simple mapping) to low or to one of low's
    # extra cases
    same: set[str] = set()
    preimages = _lowered_from()
    for member in (low, *_EXTRA.get(low, ())):
        same.add(chr(member))
        same.update(preimages.get(member, ()))
    target = char.lower()
    return "".join(sorted(x for x in same if x.lower() != target))


def unfoldable(text: str) -> str | None:
    """The characters ``re`` (IGNORECASE) matches with some character of ``text`` (a
    lower-cased needle) while their own ``lower()`` differs from it; None if ``text`` has a
    character outside the ranges where that is known."""
    if _KNOWN.fullmatch(text) is None:
        return None
    return "".join(sorted({x for char in set(text) for x in _unfoldable_for(char)}))


@dataclass(frozen=True, slots=True)
class Needle:
    """One of ``texts`` occurs in every match (lower-cased when ``fold``)."""

    texts: tuple[str, ...]
    fold: bool
    #: no ASCII-only text can match (a required character has no ASCII match)
    never_ascii: bool = False
    #: fold only: the texts as one case-insensitive regex (same flags), for the texts where
    #: the lower-case comparison is not exact
    probe: re.Pattern[str] | None = None
    #: fold only: :func:`unfoldable` of the texts (None: always search non-ASCII texts)
    unfoldable: str | None = ""
    #: fold only: the lower-case comparison is exact on every ASCII-only text (there are
    #: texts and no ASCII character among the unfoldable ones)
    ascii_exact: bool = False
    #: the longest a match can be (characters), -1 if unbounded
    width: int = -1

    def may_occur(self, text: str, lower: Callable[[str], str] = str.lower) -> bool:
        """False only if no match of the regex can be in ``text`` (``lower``: a cached
        ``str.lower``)."""
        return self.start(text, lower) >= 0

    def start(self, text: str, lower: Callable[[str], str] = str.lower) -> int:
        """-1 if no match of the regex can be in ``text``; else a position from which
        ``regex.search(text, pos)`` finds the same first match as a search from 0.

        Every match holds one of the texts and is at most ``width`` characters long, so it
        starts at most ``width`` characters before the text's first occurrence. The lower-case
        comparison gives positions in ``text`` itself: it is only used when ``lower()`` kept
        each character one character (no unfoldable one in the text, see the module).
        """
        if not self.fold:
            return self._window(text, text)
        odd = self.unfoldable
        if text.isascii():
            if self.never_ascii:
                return -1
            if self.ascii_exact:
                return self._window(text, lower(text))
        elif self.texts and odd is not None and not any(c in text for c in odd):
            low = lower(text)
            if len(low) == len(text):
                return self._window(text, low)
            return -1 if not any(t in low for t in self.texts) else 0
        if self.probe is None:
            return 0
        hit = self.probe.search(text)
        return -1 if hit is None else self.search_from(hit.start())

    def _window(self, text: str, searched: str) -> int:
        first = -1
        for t in self.texts:
            at = searched.find(t, 0, first + len(t) if first >= 0 else len(searched))
            if at >= 0 and (first < 0 or at < first):
                first = at
        return -1 if first < 0 else self.search_from(first)

    def search_from(self, at: int) -> int:
        """Where to start searching the regex when one of the texts first occurs at ``at``."""
        return 0 if self.width < 0 else max(0, at - self.width)


def _best(items: Iterable[tuple[Any, Any]]) -> tuple[str, ...] | None:
    """Texts one of which every match contains (the longest run, or a branch's runs)."""
    runs: list[str] = []
    alternatives: list[tuple[str, ...]] = []
    _runs(items, runs, alternatives)
    choices = [(r,) for r in runs if r] + alternatives
    return max(choices, key=lambda c: min(map(len, c))) if choices else None


def _runs(
    items: Iterable[tuple[Any, Any]], out: list[str], alternatives: list[tuple[str, ...]]
) -> None:
    """Append every run of consecutive literals that each match must contain, and for each
    required branch whose every alternative has texts, the union of those."""
    run: list[str] = []
    for op, av in items:
        if op is _parser.LITERAL:
            run.append(chr(av))
            continue
        if run:
            out.append("".join(run))
            run = []
        if op is _parser.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if not add_flags and not del_flags:
                _runs(sub, out, alternatives)
        elif op in _REPEATS:
            low, _high, sub = av
            if low >= 1:
                _runs(sub, out, alternatives)
        elif op is getattr(_parser, "ATOMIC_GROUP", None):
            _runs(av, out, alternatives)
        elif op is _parser.BRANCH:
            _unused, branches = av
            found = [_best(alt) for alt in branches]
            if found and all(f is not None for f in found):
                alternatives.append(tuple(dict.fromkeys(t for f in found if f for t in f)))
    if run:
        out.append("".join(run))


def _never_ascii(items: Iterable[tuple[Any, Any]], flags: int) -> bool:
    """True if every match holds a character that no ASCII character matches."""
    for op, av in items:
        if op is _parser.LITERAL:
            char = chr(av)
            if not char.isascii() and not (
                flags & re.IGNORECASE
                and any(re.fullmatch(re.escape(char), a, flags) for a in _ASCII)
            ):
                return True
        elif op is _parser.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if not add_flags and not del_flags and _never_ascii(sub, flags):
                return True
        elif op in _REPEATS:
            low, _high, sub = av
            if low >= 1 and _never_ascii(sub, flags):
                return True
        elif op is _parser.BRANCH:
            _unused, alternatives = av
            if alternatives and all(_never_ascii(alt, flags) for alt in alternatives):
                return True
    return False


@lru_cache(maxsize=8192)
def _needle(pattern: str, flags: int) -> Needle | None:
    try:
        parsed = _parser.parse(pattern, flags)
    except Exception:  # noqa: BLE001 - any parser trouble: no needle, the regex is searched
        return None
    flags = parsed.state.flags
    texts = _best(parsed)
    high = parsed.getwidth()[1]
    width = high if high < _parser.MAXREPEAT else -1
    if not flags & re.IGNORECASE:
        return Needle(texts, fold=False, width=width) if texts else None
    never_ascii = _never_ascii(parsed, flags)
    if not texts and not never_ascii:
        return None
    probe = re.compile("|".join(map(re.escape, texts)), flags) if texts else None
    lowered = tuple(t.lower() for t in texts or ())
    # the comparison works character for character: a text whose lower() changes length
    # (U+0130) is only ever searched with the regex
    exact = all(len(t) == len(low) for t, low in zip(texts or (), lowered, strict=True))
    odd = unfoldable("".join(lowered)) if exact else None
    return Needle(
        lowered,
        fold=True,
        never_ascii=never_ascii,
        probe=probe,
        unfoldable=odd,
        ascii_exact=bool(lowered) and odd is not None and not any(c.isascii() for c in odd),
        width=width,
    )


def needle_of(regex: re.Pattern[str]) -> Needle | None:
    """The needle of a compiled regex, or None when it has none (search it every time)."""
    return _needle(regex.pattern, regex.flags)
