"""Target lists: our own format and Citizen Lab's CSV, read as a stream.

Our format (``targets/*.txt``): one URL per line, optionally followed by whitespace and a
category code; ``#`` starts a comment; blank lines are ignored::

    https://www.linkedin.com/   SOCI   # the seed case

Citizen Lab's format (``*.csv``, header ``url,category_code,category_description,date_added,
source,notes``) is recognised by its header line.

Reading never stops at a bad line: every problem is yielded as a :class:`BadLine` with file and
line number, so the caller reports it, counts it and goes on. Only an unreadable file raises
(``OSError``), before anything is measured.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CITIZENLAB_HEADER = ("url", "category_code")


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    category_code: str = ""
    source: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class BadLine:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


def validate_url(url: str) -> str | None:
    """Return why ``url`` cannot be measured, or None when it is a valid http(s) URL."""
    if not url:
        return "empty URL"
    if any(c.isspace() for c in url):
        return f"URL contains white space: {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"unsupported scheme in {url!r} (only http and https)"
    host = parts.hostname
    if not host:
        return f"no host in {url!r}"
    if port == 0:
        return f"invalid port in {url!r}"
    if not host.replace("[", "").replace("]", "").strip("."):
        return f"invalid host in {url!r}"
    try:
        host.encode("idna")
    except UnicodeError:
        if not _is_ip_literal(host):
            return f"host is not a valid domain name: {host!r}"
    return None


def _is_ip_literal(host: str) -> bool:
    from probe.netaddr import parse_ip

    return parse_ip(host) is not None


def read_urls(urls: Iterable[str], *, source: str = "--input") -> Iterator[Target | BadLine]:
    for n, url in enumerate(urls, start=1):
        url = url.strip()
        why = validate_url(url)
        yield BadLine(source, n, why) if why else Target(url=url, source=source, line=n)


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
        url = fields[0]
        why = validate_url(url)
        if why:
            yield BadLine(source, n, why)
            continue
        category = fields[1] if len(fields) == 2 else ""
        yield Target(url=url, category_code=category, source=source, line=n)


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
        url = row[0].strip()
        why = validate_url(url)
        if why:
            yield BadLine(source, n, why)
            continue
        yield Target(url=url, category_code=row[1].strip(), source=source, line=n)


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
