"""The store's layout: OONI's public raw-data bucket, as its uploader writes it (pure).

OONI's measurement uploader (ooni/backend ``api/ooni_api_uploader.py``, documented in
``docs/MeasurementUploader.md``; ooni/data's ``dataclient`` reads it back) files every
measurement received in an hour under::

    raw/<YYYYMMDD>/<HH>/<CC>/<testname>/<YYYYMMDDHH>_<CC>_<testname>.n<collector>.<counter>.jsonl.gz

* the date and hour are those at which the collector *received* the measurement (the hour of
  its ``measurement_uid``), not when it was measured;
* ``testname`` is the test name without underscores (``webconnectivity``), ``CC`` upper case;
* ``n<collector>`` names the collector host that wrote the file, ``<counter>`` tells its files
  of that hour apart;
* each file is gzip'd JSONL, one measurement per line.

We follow it exactly, under an optional prefix (``s3://bucket/prefix/raw/...``). Our counter is
the journal's roll number (:mod:`probe.collector.roller`), unique per collector and increasing,
so a later file of an hour always sorts after an earlier one of the same collector. OONI's
postcans (``.tar.gz``) and the pre-2020 ``jsonl/`` tree are not written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

RAW = "raw"
SUFFIX = ".jsonl.gz"

_PART = re.compile(
    r"(?:.*/)?raw/(?P<date>[0-9]{8})/(?P<hour>[0-9]{2})/(?P<cc>[A-Z]{2})/(?P<test>[a-z0-9]+)/"
    r"(?P=date)(?P=hour)_(?P=cc)_(?P=test)\.n(?P<collector>[0-9]+)\.(?P<counter>[0-9]+)"
    r"\.jsonl\.gz\Z"
)


def bucket_of(received: datetime, cc: str, test: str) -> str:
    """The journal's group key of a measurement: ``YYYYMMDDHH/CC/testname``."""
    return f"{received.astimezone(UTC):%Y%m%d%H}/{cc}/{test}"


def part_key(bucket: str, *, collector_id: int, counter: int) -> str:
    """The store key (relative to the store's root) of one part of ``bucket``."""
    stamp, cc, test = bucket.split("/")
    return (
        f"{RAW}/{stamp[:8]}/{stamp[8:]}/{cc}/{test}/"
        f"{stamp}_{cc}_{test}.n{collector_id}.{counter}{SUFFIX}"
    )


@dataclass(frozen=True, slots=True)
class Part:
    """What a part's key says about its content."""

    key: str
    date: str  # YYYYMMDD (receive date)
    hour: int
    cc: str
    test: str
    collector: int
    counter: int


def parse_part_key(key: str) -> Part | None:
    """The facts in a part's key (any prefix before ``raw/``); None for other keys."""
    match = _PART.match(key)
    if match is None:
        return None
    return Part(
        key=key,
        date=match["date"],
        hour=int(match["hour"]),
        cc=match["cc"],
        test=match["test"],
        collector=int(match["collector"]),
        counter=int(match["counter"]),
    )
