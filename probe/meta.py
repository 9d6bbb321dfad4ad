"""Measurement metadata: OONI time stamps, report ids, measurement ids and annotations.

* Times are UTC in OONI's layout ``YYYY-MM-DD hh:mm:ss`` (no ``T``, no zone, no fraction).
* A report id has the modern OONI shape (ooni-format.md 2.2)
  ``<YYYYMMDDThhmmssZ>_<testname without "_">_<CC>_<ASN digits>_n<collector>_<16 alnum>``.
  OONI's collectors hand out ``n1``, ``n2``, ...; we open no report on an OONI collector and mint
  the id locally, so we use :data:`COLLECTOR_ID` ``"n0"``: the id still matches the modern form
  (consumers parse the date, test name, CC and ASN out of it) but can never collide with, or be
  mistaken for, an id issued by an OONI collector. The tail is 12 random bytes in base64 with the
  altchars ``oo``, exactly as OONI does, so it is 16 characters of ``[A-Za-z0-9]``.
* The measurement id is a client-side UUID4 (df-000 ``id``).
* Annotations (:func:`make_annotations`) are the keys OONI clients set, with OONI's value vocabulary
  (``architecture`` as Go's GOARCH, ``platform`` as OONI's platform names).
"""

import base64
import platform as _platform
import random
import re
import sys
import uuid
from datetime import UTC, datetime

from probe import SOFTWARE_NAME, __version__

TIME_LAYOUT = "%Y-%m-%d %H:%M:%S"

#: the collector part of our report ids (see the module docstring)
COLLECTOR_ID = "n0"

_ASN = re.compile(r"^(?:AS)?([0-9]{1,10})$", re.IGNORECASE)
_CC = re.compile(r"^[A-Z]{2}$")

#: Python's ``platform.machine()`` -> Go's GOARCH names that OONI writes
_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "arm": "arm",
}

#: ``sys.platform`` prefix -> OONI platform name
_PLATFORMS = (
    ("linux", "linux"),
    ("darwin", "macos"),
    ("win32", "windows"),
    ("cygwin", "windows"),
    ("freebsd", "freebsd"),
    ("openbsd", "openbsd"),
    ("android", "android"),
    ("ios", "ios"),
)


def _utc(when: datetime) -> datetime:
    # a naive datetime is taken to be UTC already
    return when.astimezone(UTC) if when.tzinfo is not None else when


def format_time(when: datetime) -> str:
    """``when`` in UTC as ``YYYY-MM-DD hh:mm:ss`` (fractions of a second are dropped)."""
    return _utc(when).strftime(TIME_LAYOUT)


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time` (an aware UTC datetime); ValueError on any other layout."""
    return datetime.strptime(text, TIME_LAYOUT).replace(tzinfo=UTC)


def asn_digits(asn: int | str) -> str:
    """``"AS1234"``, ``"1234"`` or ``1234`` -> ``"1234"``; ValueError otherwise."""
    match = _ASN.match(str(asn).strip())
    if match is None:
        raise ValueError(f"not an AS number: {asn!r}")
    return str(int(match.group(1)))


def make_report_id(
    *, test_name: str, cc: str, asn: int | str, now: datetime, rng: random.Random
) -> str:
    """A report id in OONI's modern form, e.g. ``20221109T225726Z_telegram_RU_8402_n0_<16>``."""
    if not _CC.match(cc):
        raise ValueError(f"not an ISO 3166 alpha-2 country code: {cc!r}")
    if not re.fullmatch(r"[a-z0-9_]+", test_name):
        raise ValueError(f"not an OONI test name: {test_name!r}")
    stamp = _utc(now).strftime("%Y%m%dT%H%M%SZ")
    tail = base64.b64encode(rng.randbytes(12), altchars=b"oo").decode("ascii")
    name = test_name.replace("_", "")
    return f"{stamp}_{name}_{cc}_{asn_digits(asn)}_{COLLECTOR_ID}_{tail}"


def measurement_id() -> str:
    """A fresh client-side measurement id (UUID4 string)."""
    return str(uuid.uuid4())


def ooni_architecture(machine: str | None = None) -> str:
    """Go's GOARCH name for this machine (``amd64``, ``arm64``, ``386``, ``arm``)."""
    raw = (machine if machine is not None else _platform.machine()).lower()
    return _ARCHITECTURES.get(raw, raw or "unknown")


def ooni_platform(name: str | None = None) -> str:
    """OONI's platform name (``linux``, ``macos``, ``windows``, ``freebsd``, ...)."""
    raw = name if name is not None else sys.platform
    for prefix, ooni in _PLATFORMS:
        if raw.startswith(prefix):
            return ooni
    return raw or "unknown"


def make_annotations() -> dict[str, str]:
    """The annotations OONI clients set, as strings (oonidata types them ``Dict[str, str]``)."""
    return {
        "architecture": ooni_architecture(),
        "engine_name": SOFTWARE_NAME,
        "engine_version": __version__,
        "platform": ooni_platform(),
        "python_version": _platform.python_version(),
    }


#: the same function under the name of the contract. Modules that use
#: ``from __future__ import annotations`` cannot import this name without mypy mistaking it for
#: the ``__future__`` feature: they import :func:`make_annotations` instead.
annotations = make_annotations
