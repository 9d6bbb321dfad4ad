"""Where the store lives: a local folder (the embedded default) or an S3 bucket.

Both give the same three operations over keys relative to the store's root (``raw/...``):

* ``put(key, data)``: atomic for readers (a reader sees the whole object or none of it).
  Locally: a temporary file, fsync, rename, fsync of the folder (:mod:`probe.fsutil`). On S3: one
  PutObject (or a multipart upload completed at the end), which S3 makes visible atomically.
  Writing the same key again with the same bytes is harmless: the roller relies on it when it
  redoes a roll after a crash.
* ``list(prefix)``: every object under ``prefix`` with its size, in key order.
* ``open(key)``: a readable binary stream of the object.

S3 goes through pyarrow's S3 filesystem (the AWS C++ SDK): the batch pipeline already depends on
pyarrow, its calls release the GIL (the collector runs them in a worker thread, the event loop
keeps serving), and it handles multipart uploads and paging. Credentials come from the usual
environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) or are passed in; an explicit
endpoint (``--s3-endpoint``) points at any S3-compatible store (SeaweedFS, MinIO, Ceph ...).
A store is named by a URL: a path (or ``file://``) or ``s3://bucket/prefix``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from probe import fsutil


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStore(Protocol):
    """A store of immutable objects addressed by ``/``-separated keys."""

    @property
    def url(self) -> str: ...

    def put(self, key: str, data: bytes) -> None: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def open(self, key: str) -> BinaryIO: ...


class StoreError(Exception):
    """The store cannot be used (bad URL, missing credentials, unreachable)."""


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a store key: {key!r}")
    return key


class LocalStore:
    """A folder on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return str(self.root)

    def put(self, key: str, data: bytes) -> None:
        fsutil.write_atomic(self.root / _safe_key(key), data, keep_mode=False)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        found: list[ObjectInfo] = []
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in files:
                if name.startswith("."):  # temporary files of a put in progress
                    continue
                path = Path(folder) / name
                found.append(
                    ObjectInfo(path.relative_to(self.root).as_posix(), path.stat().st_size)
                )
        yield from sorted(found, key=lambda info: info.key)

    def open(self, key: str) -> BinaryIO:
        return (self.root / _safe_key(key)).open("rb")


@dataclass(frozen=True, slots=True)
class S3Settings:
    """How to reach an S3-compatible store."""

    #: ``http(s)://host:port`` of a non-AWS store; None = AWS
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    #: read a public bucket without credentials
    anonymous: bool = False

    @classmethod
    def from_env(
        cls, *, endpoint: str | None = None, region: str | None = None, anonymous: bool = False
    ) -> S3Settings:
        """Credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (never from flags:
        they would show in the process list)."""
        return cls(
            endpoint=endpoint or os.environ.get("CENSORPROBE_S3_ENDPOINT") or None,
            region=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            anonymous=anonymous,
        )


class S3Store:
    """A bucket and prefix of an S3-compatible store."""

    def __init__(self, bucket: str, prefix: str, settings: S3Settings) -> None:
        import pyarrow.fs as pafs

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        options: dict[str, Any] = {"region": settings.region}
        if settings.endpoint:
            parts = urlsplit(settings.endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise StoreError(
                    f"--s3-endpoint must be http(s)://HOST:PORT, got {settings.endpoint!r}"
                )
            options["endpoint_override"] = parts.netloc
            options["scheme"] = parts.scheme
        if settings.anonymous:
            options["anonymous"] = True
        elif settings.access_key and settings.secret_key:
            options["access_key"] = settings.access_key
            options["secret_key"] = settings.secret_key
        else:
            raise StoreError(
                "S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or read a public bucket anonymously)"
            )
        self._fs = pafs.S3FileSystem(**options)
        self._pafs = pafs

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _path(self, key: str) -> str:
        key = _safe_key(key)
        return f"{self.bucket}/{self.prefix}/{key}" if self.prefix else f"{self.bucket}/{key}"

    def put(self, key: str, data: bytes) -> None:
        with self._fs.open_output_stream(self._path(key)) as out:
            out.write(data)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        root = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        base = f"{root}/{prefix.strip('/')}" if prefix else root
        selector = self._pafs.FileSelector(base, recursive=True, allow_not_found=True)
        found = [
            ObjectInfo(info.path[len(root) + 1 :], int(info.size or 0))
            for info in self._fs.get_file_info(selector)
            if info.type == self._pafs.FileType.File
        ]
        yield from sorted(found, key=lambda info: info.key)

    def open(self, key: str) -> BinaryIO:
        stream: BinaryIO = self._fs.open_input_stream(self._path(key))
        return stream


def open_store(url: str, *, s3: S3Settings | None = None) -> ObjectStore:
    """The store named by ``url``: ``s3://bucket[/prefix]``, ``file:///path`` or a path."""
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise StoreError(f"not an S3 URL (s3://bucket/prefix): {url!r}")
        return S3Store(parts.netloc, parts.path, s3 or S3Settings.from_env())
    if url.startswith("file://"):
        url = urlsplit(url).path
    if "://" in url:
        raise StoreError(f"unknown store {url!r}: use a path or s3://bucket/prefix")
    return LocalStore(Path(url))
