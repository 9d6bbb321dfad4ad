"""Listing a store's parts, filtered by what their keys say (pure but for the listing call).

A part's key names the date and hour the collector received its measurements, their country and
their test (:mod:`probe.collector.layout`), so filters never open a file. Dates are receive
dates (OONI's bucket is organised the same way); a measurement made just before midnight may be
filed under the next day. Keys that are not parts (README files, OONI's postcans) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from probe.collector import layout
from probe.collector.protocol import test_name_in_id
from probe.collector.storage import ObjectStore


@dataclass(frozen=True, slots=True)
class StoreFilter:
    """Which parts to read: receive dates ``since <= day <= until``, countries, tests."""

    since: date | None = None
    until: date | None = None
    countries: frozenset[str] = field(default_factory=frozenset)
    #: test names as in keys (``webconnectivity``); :meth:`of` accepts ``web_connectivity`` too
    tests: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        *,
        since: date | None = None,
        until: date | None = None,
        countries: Iterable[str] = (),
        tests: Iterable[str] = (),
    ) -> StoreFilter:
        return cls(
            since=since,
            until=until,
            countries=frozenset(c.strip().upper() for c in countries if c.strip()),
            tests=frozenset(test_name_in_id(t.strip()) for t in tests if t.strip()),
        )

    def matches(self, part: layout.Part) -> bool:
        day = date(int(part.date[:4]), int(part.date[4:6]), int(part.date[6:]))
        if self.since is not None and day < self.since:
            return False
        if self.until is not None and day > self.until:
            return False
        if self.countries and part.cc not in self.countries:
            return False
        return not self.tests or part.test in self.tests

    def to_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "countries": sorted(self.countries),
            "tests": sorted(self.tests),
        }


@dataclass(frozen=True, slots=True)
class StorePart:
    part: layout.Part
    size: int

    @property
    def key(self) -> str:
        return self.part.key


def list_parts(store: ObjectStore, filt: StoreFilter) -> list[StorePart]:
    """The store's parts that pass ``filt``, in key order (dates ascending)."""
    prefix = layout.RAW
    if filt.since is not None and filt.since == filt.until:
        prefix = f"{layout.RAW}/{filt.since:%Y%m%d}"  # one day: list only its folder
    found = []
    for info in store.list(prefix):
        part = layout.parse_part_key(info.key)
        if part is not None and filt.matches(part):
            found.append(StorePart(part, info.size))
    return found


def is_store(raw: str) -> bool:
    """``s3://...``, or a local folder that holds a ``raw/`` tree of parts."""
    return raw.startswith("s3://") or (Path(raw) / layout.RAW).is_dir()
