"""Synthetic OONI measurements for the benchmark, built from real samples at run time.

Templates are the real measurements under ``../shared/data`` (OONI's samples and the probe-cli
QA scenarios: web_connectivity v0.4/v0.5 in every blocking style, and the app tests). Each
template is serialised once with placeholders for the input hostname, country, network, start
time and report id; a line is then a handful of byte replacements, so a million lines are
cheap. Targets come from the Citizen Lab test lists, networks from a fixed pool of
(country, ASN) pairs, dates run through a 365-day window in file order (as in
OONI's daily/hourly raw buckets). Everything is seeded: same seed, same file.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from probe.batch.reader import discover, iter_records

_COUNTRIES = ("RU", "IR", "CN", "TR", "IN", "ID", "BY", "KZ", "EG", "PK", "MM", "VE", "DE", "US")


@dataclass(frozen=True)
class Template:
    """A measurement serialised with placeholders; ``has_host`` if its input had a hostname."""

    name: str
    test_name: str
    data: bytes
    has_host: bool


def _placeholder(data: bytes, key: str, value: object, token: bytes) -> bytes:
    return data.replace(
        b'"' + key.encode() + b'":' + orjson.dumps(value),
        b'"' + key.encode() + b'":"' + token + b'"',
    )


def make_template(name: str, msmt: dict[str, object]) -> Template | None:
    """One template from a real measurement (``None`` if it lacks the keys we vary)."""
    if not isinstance(msmt.get("test_keys"), dict) or not isinstance(msmt.get("test_name"), str):
        return None
    data = orjson.dumps(msmt)
    for key, token in (
        ("probe_cc", b"@@CC@@"),
        ("probe_asn", b"@@ASN@@"),
        ("measurement_start_time", b"@@TIME@@"),
        ("test_start_time", b"@@TIME@@"),
        ("report_id", b"@@RID@@"),
    ):
        if key in msmt:
            data = _placeholder(data, key, msmt[key], token)
    url = msmt.get("input")
    host = urlsplit(url).hostname if isinstance(url, str) and "://" in url else None
    has_host = bool(host) and not (host or "").replace(".", "").isdigit()
    if has_host and host:
        data = data.replace(host.encode(), b"@@HOST@@")
    return Template(name, str(msmt["test_name"]), data, has_host)


def load_templates(shared: Path, *, max_bytes: int = 128 * 1024) -> list[Template]:
    """Templates from ``shared/data/ooni-samples`` (not edge cases) and ``ooni-qa``.

    Measurements larger than ``max_bytes`` (four manual captures with 200-800 KB bodies) are
    left out: repeated a million times they would make the file mostly two web pages.
    """
    files = discover([shared / "data" / "ooni-samples", shared / "data" / "ooni-qa"])
    templates: list[Template] = []
    for file in files:
        if "edge-cases" in file.source or file.source.endswith(
            ("analysis.json", "observations.json")
        ):
            continue
        if "classic.json" in file.source:
            continue
        for _, raw in iter_records(file):
            try:
                msmt = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(msmt, dict):
                template = make_template(file.source, msmt)
                if template is not None and len(template.data) <= max_bytes:
                    templates.append(template)
    return templates


def load_hosts(shared: Path) -> list[str]:
    """Hostnames of the test lists (the realistic target population)."""
    hosts: set[str] = set()
    for path in sorted((shared / "data" / "test-lists").glob("*.csv")):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            url = line.split(",", 1)[0]
            if "://" in url:
                host = urlsplit(url).hostname
                if host:
                    hosts.add(host)
    return sorted(hosts)


def generate(
    templates: Sequence[Template],
    hosts: Sequence[str],
    n: int,
    *,
    seed: int = 1,
    start: datetime = datetime(2024, 1, 1),
) -> Iterator[bytes]:
    """``n`` measurement lines (without newline)."""
    rng = random.Random(seed)
    networks = [(cc, f"AS{rng.randrange(1000, 65000)}") for cc in _COUNTRIES for _ in range(8)]
    host_pool = [h.encode() for h in hosts[:2000]] or [b"www.example.com"]
    for i in range(n):
        template = templates[rng.randrange(len(templates))]
        cc, asn = networks[rng.randrange(len(networks))]
        # time-ordered like OONI's raw buckets (a file covers a stretch of time), with jitter
        when = start + timedelta(seconds=(i * 365 * 86400) // n + rng.randrange(3600))
        stamp = when.strftime("%Y-%m-%d %H:%M:%S").encode()
        rid = (
            f"{when:%Y%m%dT%H%M%SZ}_{template.test_name.replace('_', '')}_{cc}_{asn[2:]}"
            f"_n1_{i:016d}"
        ).encode()
        line = (
            template.data.replace(b"@@CC@@", cc.encode())
            .replace(b"@@ASN@@", asn.encode())
            .replace(b"@@TIME@@", stamp)
            .replace(b"@@RID@@", rid)
        )
        if template.has_host:
            line = line.replace(b"@@HOST@@", host_pool[rng.randrange(len(host_pool))])
        yield line


def write_jsonl_gz(path: Path, lines: Iterator[bytes], *, level: int = 1) -> int:
    """Write lines as JSONL.gz; returns the number of uncompressed bytes."""
    size = 0
    batch: list[bytes] = []
    with gzip.open(path, "wb", compresslevel=level) as fh:
        for line in lines:
            batch.append(line)
            size += len(line) + 1
            if len(batch) >= 1000:
                fh.write(b"\n".join(batch) + b"\n")
                batch = []
        if batch:
            fh.write(b"\n".join(batch) + b"\n")
    return size
