"""Target lists: our own format and Citizen Lab's CSV, read as a stream.

Our format (``targets/*.txt``): one URL per line, optionally followed by whitespace and a
category code; ``#`` starts a comment; blank lines are ignored::

    https://www.linkedin.com/   SOCI   # the seed case

Citizen Lab's format (``*.csv``, header ``url,category_code,category_description,date_added,
source,notes``) is recognised by its header line.

Reading never stops at a bad line: every problem is yielded as a :class:`BadLine` with file and
line number, so the caller reports it, counts it and goes on. Only an unreadable file raises
(``OSError``), before anything is measured.

Every URL goes through :func:`probe.inputs.target_url`: a :class:`Target` carries the URL that is
measured (credentials removed, IDN host as A-labels) and :attr:`Target.notes`, what to record
about the change (the form given, that credentials were removed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.inputs import InputError, TargetURL, target_url

CITIZENLAB_HEADER = ("url", "category_code")


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    category_code: str = ""
    source: str = ""
    line: int = 0
    #: the form given, when the URL was changed to be measured (see probe.inputs.TargetURL)
    given: str = ""
    credentials_removed: bool = False

    @property
    def notes(self) -> dict[str, Any]:
        """Recorded beside the measurement as ``test_keys.x_input`` (empty: nothing to say)."""
        return TargetURL(self.url, self.given, self.credentials_removed).notes()


@dataclass(frozen=True, slots=True)
class BadLine:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


def validate_url(url: str) -> str | None:
    """Return why ``url`` cannot be measured, or None when it can (see :func:`target_url`)."""
    try:
        target_url(url)
    except InputError as exc:
        return str(exc)
    return None


def make_target(url: str, *, category_code: str = "", source: str = "", line: int = 0) -> Target:
    """A target for ``url`` normalised by :func:`target_url` (raises InputError)."""
    checked = target_url(url)
    return Target(
        url=checked.url,
        category_code=category_code,
        source=source,
        line=line,
        given=checked.given,
        credentials_removed=checked.credentials_removed,
    )


def _target_or_bad(
    url: str, *, source: str, line: int, category_code: str = ""
) -> Target | BadLine:
    try:
        return make_target(url, category_code=category_code, source=source, line=line)
    except InputError as exc:
        return BadLine(source, line, str(exc))


def read_urls(urls: Iterable[str], *, source: str = "--input") -> Iterator[Target | BadLine]:
    for n, url in enumerate(urls, start=1):
        yield _target_or_bad(url.strip(), source=source, line=n)


def read_list(path: Path) -> Iterator[Target | BadLine]:
    """Stream the targets of one list file (format detected from its first line)."""
    handle = path.open("r", encoding="utf-8", errors="replace", newline="")
    return _read_handle(handle, str(path))


def _read_handle(handle: io.TextIOBase, source: str) -> Iterator[Target | BadLine]:
    with handle:
        first = handle.readline()
        header = [h.strip().lower() for h in first.split(",")]
        if tuple(header[:2]) == CITIZENLAB_HEADER:
            yield from _read_citizenlab(handle, source, header)
        else:
            yield from _read_plain(_chain_first(first, handle), source)


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _read_plain(lines: Iterable[str], source: str) -> Iterator[Target | BadLine]:
    for n, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) > 2:
            yield BadLine(source, n, f"expected 'URL [CATEGORY]', got {len(fields)} fields")
            continue
        category = fields[1] if len(fields) == 2 else ""
        yield _target_or_bad(fields[0], category_code=category, source=source, line=n)


def _read_citizenlab(
    handle: Iterable[str], source: str, header: list[str]
) -> Iterator[Target | BadLine]:
    reader = csv.reader(handle)
    width = len(header)
    for row in reader:
        n = reader.line_num + 1  # +1 for the header consumed before the reader started
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != width:
            yield BadLine(source, n, f"expected {width} CSV fields, got {len(row)}")
            continue
        yield _target_or_bad(row[0].strip(), category_code=row[1].strip(), source=source, line=n)


def select(
    items: Iterable[Target | BadLine], *, category: str | None = None, limit: int | None = None
) -> Iterator[Target | BadLine]:
    """Filter targets by category code and stop after ``limit`` targets (bad lines pass)."""
    count = 0
    for item in items:
        if isinstance(item, Target):
            if category is not None and item.category_code.upper() != category.upper():
                continue
            if limit is not None and count >= limit:
                return
            count += 1
        yield item
