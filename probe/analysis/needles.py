"""Needles: a substring every match of a regex must contain, to reject texts cheaply (pure).

A blockpage set holds about a thousand regexes, nearly all of them literal text, and almost
every response matches none of them. Searching each regex costs a scan of the text per regex;
``needle in text`` costs far less (and an ASCII-only text can never contain a Cyrillic needle).
:func:`needle_of` reads the regex's own parse tree (the standard library's parser, the one
``re.compile`` uses) and keeps the longest run of literal characters that every match contains:
literals at the top level, inside plain groups and inside repeats of at least one. It never
guesses: anything it does not understand (branches, classes, lookarounds, groups with their own
flags) ends a run, and a regex without a usable run gets no needle (it is always searched).

Case-insensitive regexes (``(?i)``): the needle is lower-cased and compared with the text's
lower-case form, but only for ASCII-only texts, where ``re``'s case folding is plain
ASCII ``lower()``; a text with any non-ASCII character is always searched. A needle character
that no ASCII character matches (Cyrillic, say) proves that an ASCII-only text cannot match.
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

_REPEATS = frozenset(
    getattr(_parser, name)
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
    if hasattr(_parser, name)
)
_ASCII = [chr(i) for i in range(128)]


@dataclass(frozen=True, slots=True)
class Needle:
    """One of ``texts`` occurs in every match (lower-cased when ``fold``)."""

    texts: tuple[str, ...]
    fold: bool
    #: no ASCII-only text can match (a required character has no ASCII match)
    never_ascii: bool = False
    #: fold only: the texts as one case-insensitive regex (same flags), for non-ASCII texts
    probe: re.Pattern[str] | None = None

    def may_occur(self, text: str, lower: Callable[[str], str] = str.lower) -> bool:
        """False only if no match of the regex can be in ``text`` (``lower``: a cached
        ``str.lower``)."""
        if not self.fold:
            return any(t in text for t in self.texts)
        if text.isascii():
            if self.never_ascii:
                return False
            if all(t.isascii() for t in self.texts):
                low = lower(text)
                return any(t in low for t in self.texts)
        return self.probe is None or self.probe.search(text) is not None


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
    if not flags & re.IGNORECASE:
        return Needle(texts, fold=False) if texts else None
    never_ascii = _never_ascii(parsed, flags)
    if not texts and not never_ascii:
        return None
    probe = re.compile("|".join(map(re.escape, texts)), flags) if texts else None
    lowered = tuple(t.lower() if t.isascii() else t for t in texts or ())
    return Needle(lowered, fold=True, never_ascii=never_ascii, probe=probe)


def needle_of(regex: re.Pattern[str]) -> Needle | None:
    """The needle of a compiled regex, or None when it has none (search it every time)."""
    return _needle(regex.pattern, regex.flags)
