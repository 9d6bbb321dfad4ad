"""Defensive readers for untrusted measurement JSON (pure; never raise).

OONI data may hold ``null``, a wrong type or a missing key anywhere (ooni-format.md 1), so every
read in :mod:`probe.analysis` goes through these helpers instead of indexing directly.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

_CHARSET = re.compile(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", re.IGNORECASE)


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a dict (not copied: callers only read it), another mapping as a dict,
    else an empty dict. Typed ``dict``, not ``Mapping``: compiled (probe.native), a ``get`` on
    a ``dict`` is a direct C call, on a ``Mapping`` a method lookup each time."""
    if type(value) is dict:
        return value
    if isinstance(value, Mapping):
        return dict(value)
    return {}


def as_list(value: object) -> list[Any]:
    """``value`` if it is a list (not copied: callers only read it), a tuple as a list, else
    an empty list."""
    if type(value) is list:
        return value
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if f == f and abs(f) != float("inf") else None


def failure_of(value: object) -> str | None:
    """A df-007 failure string; ``false``/``""``/non-strings (old MK data) mean no failure."""
    return value if isinstance(value, str) and value else None


def tags_of(event: dict[str, Any]) -> tuple[str, ...]:
    tags = event.get("tags")
    if not tags:
        return ()
    return tuple(t for t in as_list(tags) if isinstance(t, str))


def depth_of(tags: tuple[str, ...]) -> int:
    for tag in tags:
        if tag.startswith("depth="):
            n = tag[len("depth=") :]
            if n.isdigit() and len(n) < 6:
                return int(n)
    return 0


def tag_value(tags: tuple[str, ...], key: str) -> str | None:
    prefix = key + "="
    for tag in tags:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return None


def maybe_binary(value: object) -> bytes:
    """Bytes of a MaybeBinaryData value (plain string or ``{"format":"base64","data":...}``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    d = as_dict(value)
    data = as_str(d.get("data"))
    if data is not None and d.get("format") == "base64":
        try:
            return base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            return b""
    return b""


def maybe_binary_text(value: object) -> str:
    return decode_body(maybe_binary(value), content_type="")


def decode_body(raw: bytes, *, content_type: str) -> str:
    """Text of a body: UTF-8, else the charset named by the header or a ``<meta>``, else cp1251.

    Russian blockpages are often windows-1251 (ooni-format.md 7), hence the last resort; cp1251
    maps almost every byte, so decoding never fails and patterns in Cyrillic still match.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = _CHARSET.search(content_type.encode("ascii", "ignore")) or _CHARSET.search(raw[:4096])
    if m is not None:
        try:
            return raw.decode(m.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return raw.decode("cp1251", errors="replace")
