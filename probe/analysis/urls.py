"""The scheme, host name and port of a URL, as ``urllib.parse.urlsplit`` reads them (pure).

``urlsplit`` and its ``hostname`` / ``port`` properties run in the interpreter and cost a few
microseconds per URL; the analysis reads a URL or two per measurement, and in a batch of
measurements most URLs are new (hundreds of thousands of distinct targets), so memoising them
only helps so much. :func:`url_parts` reads the common shape of a URL (an ASCII scheme, ``//``,
a host of letters, digits, dots, dashes and underscores, an optional port, then a path, query
or fragment) with one regular expression, and hands every other URL to ``urlsplit``. The result
is the same (a property test compares them on generated URLs).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: scheme, host, port; nothing urlsplit would strip or remove (C0 controls and spaces in
#: front, tabs and line breaks anywhere), no user info, brackets, percent or non-ASCII host
_SIMPLE = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*)://([A-Za-z0-9._\-]*)(?::([0-9]{0,5}))?(?:[/?#][^\t\r\n]*)?\Z"
)

#: ``port`` when ``urlsplit(url).port`` raises ValueError (not digits, or out of range)
BAD_PORT = -1


def url_parts(url: str) -> tuple[str, str | None, int | None]:
    """``(scheme, hostname, port)`` of ``urlsplit(url)``; ``port`` is :data:`BAD_PORT` where
    reading ``.port`` raises. Raises ``ValueError`` where ``urlsplit`` does (a bad IPv6 URL)."""
    m = _SIMPLE.match(url)
    if m is not None:
        digits = m.group(3)
        port = int(digits) if digits else None
        if port is None or port <= 65535:
            host = m.group(2)
            return m.group(1).lower(), host.lower() if host else None, port
    parts = urlsplit(url)
    try:
        return parts.scheme, parts.hostname, parts.port
    except ValueError:
        return parts.scheme, parts.hostname, BAD_PORT
