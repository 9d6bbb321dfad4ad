"""Decoding an HTTP body's ``Content-Encoding`` with bounded output, so it can be checked.

The probe records the body as it came off the wire (up to its body cap). A server may compress
it; the volunteer's address inside compressed bytes cannot be found, and so cannot be scrubbed.
:func:`decode_body` undoes the codings in reverse order of the header (``gzip, br`` was gzipped
first), each with its output limited to ``cap`` bytes: a compression bomb yields a truncated
prefix, never a memory blow-up. Supported: ``gzip``/``x-gzip``, ``deflate`` (zlib-wrapped or
raw, as browsers accept both), ``br`` (Google's ``brotli``), ``zstd`` (``zstandard``) and
``identity``. A body cut by the probe's cap decodes to the prefix it holds.

The result says what it could: the decoded bytes (possibly a prefix) and, when nothing could be
decoded from the start (an unknown coding, data that is not what the header says), why. A
caller publishes only what it could decode and check, and withholds the rest.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: codings we can undo (lower case), and the aliases browsers accept
SUPPORTED = ("gzip", "x-gzip", "deflate", "br", "zstd", "identity")
#: at most this many codings are undone (a longer list is itself hostile)
MAX_CODINGS = 4


@dataclass(frozen=True, slots=True)
class Decoded:
    """The decoded body (``data``), whether it is only a prefix, and why not when it failed."""

    data: bytes
    codings: tuple[str, ...]
    truncated: bool = False
    #: why the body could not be decoded from its start (None: ``data`` is usable)
    problem: str | None = None


class _Undecodable(Exception):
    pass


def codings_of(headers: Sequence[tuple[str, str]]) -> list[str]:
    """The ``Content-Encoding`` codings in the order they were applied (lower case)."""
    out: list[str] = []
    for name, value in headers:
        if name.strip().lower() == "content-encoding":
            out.extend(c.strip().lower() for c in value.split(",") if c.strip())
    return [c for c in out if c != "identity"]


def decode_body(raw: bytes, codings: Sequence[str], *, cap: int) -> Decoded:
    """Undo ``codings`` (as :func:`codings_of` lists them) with at most ``cap`` bytes out."""
    applied = tuple(codings)
    if len(applied) > MAX_CODINGS:
        return Decoded(
            b"", applied, problem=f"{len(applied)} content codings (at most {MAX_CODINGS})"
        )
    data = raw
    truncated = False
    for coding in reversed(applied):
        step = _DECODERS.get(coding)
        if step is None:
            return Decoded(b"", applied, problem=f"unsupported content-encoding {coding[:40]!r}")
        try:
            data, cut = step(data, cap)
        except _Undecodable as exc:
            return Decoded(b"", applied, problem=f"{coding} body cannot be decoded: {exc}")
        truncated = truncated or cut
    return Decoded(data, applied, truncated=truncated)


def _zlib_stream(data: bytes, cap: int, wbits: int) -> tuple[bytes, bool]:
    """Inflate ``data`` (possibly several gzip members) to at most ``cap`` bytes."""
    out = bytearray()
    rest = data
    while rest and len(out) < cap:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, cap - len(out))
        except zlib.error as exc:
            if not out:
                raise _Undecodable(str(exc)) from None
            return bytes(out), True  # corrupt after a prefix: publish the prefix
        if inflater.unconsumed_tail:
            return bytes(out), True  # the cap was reached
        if not inflater.eof:
            return bytes(out), True  # the body was cut (by the probe's cap, or the server)
        rest = inflater.unused_data
        if wbits != _GZIP or not rest.startswith(b"\x1f\x8b"):
            break  # trailing bytes after the stream: ignored, as browsers do
    return bytes(out), bool(rest) and len(out) >= cap


_GZIP = 16 + zlib.MAX_WBITS


def _gzip(data: bytes, cap: int) -> tuple[bytes, bool]:
    if not data.startswith(b"\x1f\x8b"):
        raise _Undecodable("not gzip data")
    return _zlib_stream(data, cap, _GZIP)


def _deflate(data: bytes, cap: int) -> tuple[bytes, bool]:
    try:
        return _zlib_stream(data, cap, zlib.MAX_WBITS)
    except _Undecodable:
        return _zlib_stream(data, cap, -zlib.MAX_WBITS)  # raw deflate, as some servers send


def _brotli(data: bytes, cap: int) -> tuple[bytes, bool]:
    import brotli

    decoder = brotli.Decompressor()
    try:
        out = decoder.process(data, output_buffer_limit=cap)
    except brotli.error as exc:
        raise _Undecodable(str(exc) or "corrupt data") from None
    if len(out) >= cap:
        return out[:cap], True
    return out, not decoder.is_finished()


def _zstd(data: bytes, cap: int) -> tuple[bytes, bool]:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = bytearray()
    try:
        while len(out) < cap:
            chunk = reader.read(min(1 << 16, cap - len(out)))
            if not chunk:
                return bytes(out), False
            out += chunk
    except zstandard.ZstdError as exc:
        if not out:
            raise _Undecodable(str(exc)) from None
        return bytes(out), True
    return bytes(out), bool(reader.read(1))


_DECODERS: dict[str, Callable[[bytes, int], tuple[bytes, bool]]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}
