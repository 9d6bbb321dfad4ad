"""``probe geoip update``: fetch DB-IP's free lite databases (CC-BY-4.0) into the data dir.

DB-IP publishes ``dbip-asn-lite-YYYY-MM.mmdb.gz`` and ``dbip-country-lite-YYYY-MM.mmdb.gz``
monthly. For each kind we try this month's file, then the previous month's (the new one may not
be out yet), download it to a temporary file next to the destination (size-capped), decompress
it (size-capped, in a worker thread), check that MaxMind's reader opens it and that its
``database_type`` names the right kind, and only then ``os.replace`` the old file: a failed or
interrupted update never leaves a broken database behind. ``base_url`` serves mirrors (and the
tests' loopback server).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import trio

from probe import __version__
from probe.failures import Operation, classify
from probe.geo.db import ASN_FILE, COUNTRY_FILE, GeoDatabaseError, describe, open_reader

DEFAULT_BASE_URL = "https://download.db-ip.com/free/"
ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), licensed CC-BY-4.0"
#: (kind in the file name, file written in the data dir)
KINDS = (("asn", ASN_FILE), ("country", COUNTRY_FILE))
MAX_DOWNLOAD = 256 << 20
MAX_DATABASE = 1 << 30
CHUNK = 1 << 16


class UpdateError(Exception):
    """One line for the volunteer: what could not be fetched or verified."""


@dataclass(frozen=True, slots=True)
class Updated:
    kind: str
    url: str
    path: Path
    description: str


def months(now: datetime) -> tuple[str, str]:
    """This month and the previous one as ``YYYY-MM`` (UTC)."""
    now = now.astimezone(UTC)
    prev_year, prev_month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{now.year:04d}-{now.month:02d}", f"{prev_year:04d}-{prev_month:02d}"


def file_url(base_url: str, kind: str, month: str) -> str:
    return f"{base_url.rstrip('/')}/dbip-{kind}-lite-{month}.mmdb.gz"


@contextmanager
def _temp_path(directory: Path, suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=suffix, dir=directory)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


async def _download(client: httpx.AsyncClient, url: str, dest: Path) -> int:
    """Status code; the body is in ``dest`` when it is 200."""
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            return response.status_code
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_DOWNLOAD:
            raise UpdateError(f"{url} is larger than {MAX_DOWNLOAD} bytes")  # refused unread
        size = 0
        async with await trio.open_file(dest, "wb") as fh:
            async for chunk in response.aiter_bytes(CHUNK):
                size += len(chunk)
                if size > MAX_DOWNLOAD:
                    raise UpdateError(f"{url} is larger than {MAX_DOWNLOAD} bytes")
                await fh.write(chunk)
        return 200


def _gunzip(src: Path, dest: Path) -> None:
    size = 0
    try:
        with gzip.open(src, "rb") as fin, dest.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                size += len(chunk)
                if size > MAX_DATABASE:
                    raise UpdateError(f"decompressed database larger than {MAX_DATABASE} bytes")
                fout.write(chunk)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise UpdateError(f"not a gzip file: {exc}") from exc


def _verify(path: Path, kind: str) -> str:
    try:
        reader = open_reader(path)
    except GeoDatabaseError as exc:
        raise UpdateError(f"downloaded {kind} database does not open: {exc}") from exc
    with reader:
        db_type = reader.metadata().database_type
        if kind not in db_type.lower():
            raise UpdateError(f"downloaded {kind} database is of type {db_type!r}")
        return describe(reader)


async def update_one(
    client: httpx.AsyncClient,
    *,
    kind: str,
    filename: str,
    base_url: str,
    dest_dir: Path,
    now: datetime,
) -> Updated:
    with _temp_path(dest_dir, ".gz") as gz, _temp_path(dest_dir, ".mmdb") as mmdb:
        tried: list[str] = []
        for month in months(now):
            url = file_url(base_url, kind, month)
            try:
                status = await _download(client, url, gz)
            except httpx.HTTPError as exc:
                raise UpdateError(
                    f"cannot download {url}: {classify(exc, Operation.HTTP_ROUND_TRIP).failure}"
                ) from exc
            if status == 200:
                break
            tried.append(f"{url}: HTTP {status}")
        else:
            raise UpdateError("no database found: " + "; ".join(tried))
        await trio.to_thread.run_sync(_gunzip, gz, mmdb)
        description = await trio.to_thread.run_sync(_verify, mmdb, kind)
        final = dest_dir / filename
        os.replace(mmdb, final)
    return Updated(kind=kind, url=url, path=final, description=description)


async def update(
    dest_dir: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    now: datetime | None = None,
    timeout: float = 60.0,
    trust_env: bool = True,
) -> list[Updated]:
    """Fetch and install both databases; raises :class:`UpdateError` (one line) on failure."""
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpdateError(f"cannot create {dest_dir}: {exc.strerror or exc}") from exc
    when = now or datetime.now(UTC)
    headers = {"User-Agent": f"censorprobe/{__version__}"}
    async with httpx.AsyncClient(
        timeout=timeout, headers=headers, trust_env=trust_env, follow_redirects=True
    ) as client:
        return [
            await update_one(
                client, kind=kind, filename=filename, base_url=base_url, dest_dir=dest_dir, now=when
            )
            for kind, filename in KINDS
        ]
