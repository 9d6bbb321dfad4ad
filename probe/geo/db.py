"""ASN and country lookups in MaxMind-format (``.mmdb``) databases, with MaxMind's own reader.

Two databases, either may be absent:

* ASN: records with ``autonomous_system_number`` and ``autonomous_system_organization``
  (GeoLite2-ASN, DB-IP "asn lite").
* Country: records with ``country.iso_code`` (GeoLite2-Country, DB-IP "country lite").

Default location: ``$XDG_DATA_HOME/censorprobe/geoip/{asn,country}.mmdb`` (``XDG_DATA_HOME``
defaults to ``~/.local/share``); ``probe geoip update`` writes there. A database that does not
open is reported, never guessed around: :class:`GeoDatabaseError`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import maxminddb

ASN_FILE = "asn.mmdb"
COUNTRY_FILE = "country.mmdb"


class GeoDatabaseError(Exception):
    """A database file is missing, unreadable or not a MaxMind DB."""


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/censorprobe/geoip`` (default ``~/.local/share/censorprobe/geoip``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "censorprobe" / "geoip"


@dataclass(frozen=True, slots=True)
class GeoInfo:
    """What the databases say about one address (None = no record / no database)."""

    asn: int | None = None
    network_name: str | None = None
    cc: str | None = None


def describe(reader: maxminddb.Reader) -> str:
    """``"<database_type> <build date>"``, e.g. ``"DBIP-ASN-Lite 2026-11-01"``."""
    meta = reader.metadata()
    built = datetime.fromtimestamp(meta.build_epoch, UTC).strftime("%Y-%m-%d")
    return f"{meta.database_type} {built}"


def open_reader(path: Path) -> maxminddb.Reader:
    """Open one database in memory (the file may be replaced while we run)."""
    import maxminddb  # here, not at module level: it costs 30 ms of start-up (multiprocessing)

    try:
        return maxminddb.open_database(str(path), mode=maxminddb.MODE_MEMORY)
    except FileNotFoundError as exc:
        raise GeoDatabaseError(f"no such database: {path}") from exc
    except OSError as exc:
        raise GeoDatabaseError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (maxminddb.InvalidDatabaseError, ValueError) as exc:
        raise GeoDatabaseError(f"{path} is not a MaxMind DB") from exc


def _get(record: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


class GeoDatabases:
    """The ASN and country readers (each optional); a context manager that closes them."""

    def __init__(self, *, asn: maxminddb.Reader | None, country: maxminddb.Reader | None) -> None:
        self.asn = asn
        self.country = country

    @classmethod
    def open(cls, *, asn_db: Path | None, country_db: Path | None) -> GeoDatabases:
        """Open the given paths, else the data dir's files where they exist.

        A given path must open; so must a default file that exists (a broken database is
        reported, not silently ignored). A default file that does not exist is just absent.
        """
        readers: list[maxminddb.Reader | None] = []
        try:
            for given, default in ((asn_db, ASN_FILE), (country_db, COUNTRY_FILE)):
                path = given if given is not None else data_dir() / default
                if given is None and not path.exists():
                    readers.append(None)
                else:
                    readers.append(open_reader(path))
        except GeoDatabaseError:
            for reader in readers:
                if reader is not None:
                    reader.close()
            raise
        return cls(asn=readers[0], country=readers[1])

    def __enter__(self) -> GeoDatabases:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for reader in (self.asn, self.country):
            if reader is not None:
                reader.close()

    def __bool__(self) -> bool:
        return self.asn is not None or self.country is not None

    def description(self) -> str:
        """The databases used, for the ``x_geo_db`` annotation (``"none"`` without any)."""
        parts = [describe(r) for r in (self.asn, self.country) if r is not None]
        return "; ".join(parts) or "none"

    def lookup(self, ip: str) -> GeoInfo:
        """ASN, organisation and country of ``ip``; fields are None where nothing is known."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return GeoInfo()
        asn = org = cc = None
        if self.asn is not None:
            record = self.asn.get(addr)
            number = _get(record, "autonomous_system_number")
            if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                asn = number
                name = _get(record, "autonomous_system_organization")
                org = name if isinstance(name, str) else None
        if self.country is not None:
            code = _get(self.country.get(addr), "country", "iso_code")
            if isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha():
                cc = code.upper()
        return GeoInfo(asn=asn, network_name=org, cc=cc)
