"""Validators for everything a person or a file hands the probe: numbers, files, URLs, JSON.

Every command uses this one module, so a bad input gets the same treatment everywhere: an
:class:`InputError` whose message is one line naming the option and what is wrong, which the
command prints as ``probe <command>: error: <message>`` before exiting with status 2, having
measured or written nothing. The functions are pure apart from reading the files they are
asked to check; they never print and never exit.

* **Numbers** (:func:`number`, :func:`seconds`, :func:`count`): NaN, infinities, booleans,
  negative and absurdly large values are refused, whether they come from the command line
  (text) or a TOML file (already a number; TOML has ``nan`` and ``inf``). The command line's
  argparse ``type=`` adapters of these validators live in :mod:`probe.commands.argtypes` (only
  the command line sees argparse).
* **Files** (:func:`text_file`, :func:`toml_file`, :func:`check_text_file`,
  :func:`readable_file`, :func:`directory`, :func:`output_directory`, :func:`output_file`):
  missing files, directories where a file is wanted (and the reverse), unreadable files,
  binary files (a NUL byte) and text that is not UTF-8 are refused with the file and the
  offset of the first bad byte.
* **Target URLs** (:func:`target_url`): http(s) only, at most :data:`MAX_URL_LENGTH`
  characters, no control characters or white space. ``user:pass@`` is removed before anything
  is measured and only the fact that it was is kept (never the values); an IPv6 zone id
  (``[fe80::1%25eth0]``) is refused, since it names one of the volunteer's own interfaces;
  an internationalised host name is converted to its A-label form with the ``idna`` package
  (UTS #46) and the form given is kept beside it; non-ASCII characters in the path, query and
  fragment are percent-encoded as browsers do.
* **JSON documents** (:func:`json_document`): parsed by orjson (which refuses nesting past
  1,024 levels and numbers beyond a double), then held to :data:`MAX_JSON_DEPTH` levels and to
  numbers an analysis can do arithmetic on (integers within 64 bits, finite floats), with the
  JSON path of the first offending value in the message.
"""

from __future__ import annotations

import codecs
import math
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

#: the longest target URL measured (the control helper refuses longer ones too)
MAX_URL_LENGTH = 4096
#: longest text file read whole (config, app files); target lists are checked streaming
MAX_TEXT_FILE = 4 << 20
#: largest JSON document read from stdin by ``probe analyze --stdin``
MAX_JSON_BYTES = 64 << 20
#: deepest nesting accepted in a measurement (real ones stay under 10 levels)
MAX_JSON_DEPTH = 64
#: any time limit, in seconds (a day: longer is a typo, not a plan)
MAX_SECONDS = 86400.0
_INT64 = 1 << 63
_CHUNK = 1 << 16


class InputError(ValueError):
    """An input the probe refuses; ``str()`` is the one-line message for the user."""


def _show(value: object, limit: int = 60) -> str:
    """``repr`` of a value, cut so that a 10 MB argument never reaches the terminal."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


# --- numbers ------------------------------------------------------------------------------------


def number(
    value: object,
    *,
    name: str,
    minimum: float,
    maximum: float,
    integer: bool = False,
    exclusive_minimum: bool = False,
    text: bool = True,
) -> float:
    """``value`` as a finite number within the bounds, else InputError. ``text``: the value
    may be text to parse (the command line); a file's value must already be a number."""
    kind = "a whole number" if integer else "a number"
    allowed: tuple[type, ...] = (str, int, float) if text else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise InputError(f"{name} must be {kind}, got {_show(value)}")
    parsed: float
    if isinstance(value, str):
        stripped = value.strip()
        try:
            parsed = int(stripped) if integer else float(stripped)
        except ValueError:
            raise InputError(f"{name} must be {kind}, got {_show(value)}") from None
    elif isinstance(value, int | float):
        parsed = value
    else:  # pragma: no cover - refused above
        raise InputError(f"{name} must be {kind}, got {_show(value)}")
    if integer and isinstance(parsed, float):
        if not parsed.is_integer():
            raise InputError(f"{name} must be {kind}, got {_show(value)}")
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise InputError(f"{name} must be a finite number, got {_show(value)}")
    low = "more than" if exclusive_minimum else "at least"
    too_low = parsed <= minimum if exclusive_minimum else parsed < minimum
    if too_low or parsed > maximum:
        raise InputError(
            f"{name} must be {low} {minimum:g} and at most {maximum:g}, got {_show(value)}"
        )
    return parsed


def seconds(value: object, *, name: str, maximum: float = MAX_SECONDS, text: bool = True) -> float:
    """A duration: finite, more than 0, at most ``maximum`` seconds."""
    return float(
        number(value, name=name, minimum=0.0, maximum=maximum, exclusive_minimum=True, text=text)
    )


def count(value: object, *, name: str, minimum: int, maximum: int) -> int:
    """A whole number within ``[minimum, maximum]``."""
    return int(number(value, name=name, minimum=minimum, maximum=maximum, integer=True))


# --- files --------------------------------------------------------------------------------------


def _stat(path: Path, what: str) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise InputError(f"cannot read {what} {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def readable_file(path: Path, *, what: str) -> Path:
    """An existing regular file this process can open (binary content is fine: PEM, .mmdb)."""
    info = _stat(path, what)
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} {path} is not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return path


def _text_problem(chunk: bytes, decoder: codecs.IncrementalDecoder, offset: int) -> str | None:
    """Why this chunk is not text (at which file offset), or None."""
    nul = chunk.find(b"\x00")
    if nul >= 0:
        return f"is a binary file (a NUL byte at offset {offset + nul}), not text"
    try:
        decoder.decode(chunk, final=not chunk)
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 text (byte 0x{chunk[exc.start]:02x} at offset {offset + exc.start})"
    return None


def check_text_file(path: Path, *, what: str) -> Path:
    """A readable UTF-8 text file, checked in chunks (a target list may be large)."""
    readable_file(path, what=what)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with path.open("rb") as fh:
            while True:
                chunk = fh.read(_CHUNK)
                problem = _text_problem(chunk, decoder, offset)
                if problem is not None:
                    raise InputError(f"{what} {path} {problem}")
                if not chunk:
                    return path
                offset += len(chunk)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def text_file(path: Path, *, what: str, max_bytes: int = MAX_TEXT_FILE) -> str:
    """The content of a small UTF-8 text file (config, app file)."""
    info = _stat(path, what)
    if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
        raise InputError(f"{what} {path} is too large ({info.st_size} bytes, at most {max_bytes})")
    check_text_file(path, what=what)
    try:
        data = path.read_bytes()[: max_bytes + 1]
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(f"{what} {path} is too large (more than {max_bytes} bytes)")
    return data.decode("utf-8")


def toml_file(path: Path, *, what: str) -> dict[str, Any]:
    """A TOML file's table; every problem is one line naming the file."""
    text = text_file(path, what=what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {path} is not valid TOML: {exc}") from None


def directory(path: Path, *, what: str) -> Path:
    """An existing directory."""
    info = _stat(path, what)
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {path} is not a directory")
    return path


def output_directory(path: Path, *, what: str, empty: bool = True) -> Path:
    """A directory to write into: absent (it will be created under a writable parent) or an
    existing directory (``empty``: with nothing in it)."""
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise InputError(f"{what} {path} exists and is not a directory")
        if empty and any(path.iterdir()):
            raise InputError(f"{what} {path} exists and is not empty")
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{what} {path}: no permission to write there")
        return path
    parent = _existing_parent(path)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: cannot create it under {parent}")
    return path


def output_file(path: Path, *, what: str) -> Path:
    """A file to write: not a directory, under a directory that exists or can be created."""
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise InputError(f"{what} {path}: no permission to write it")
        return path
    parent = _existing_parent(path.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: cannot create it under {parent}")
    return path


def _existing_parent(path: Path) -> Path:
    for candidate in [path, *path.absolute().parents]:
        if candidate.exists():
            return candidate
    return Path("/")


# --- target URLs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetURL:
    """A URL the probe may measure, and what was changed to make it one."""

    url: str
    #: the URL as given (credentials removed) when it differs from ``url`` (an IDN host,
    #: percent-encoded characters); "" when they are the same
    given: str = ""
    #: ``user:pass@`` was in the URL and was removed (the values are never kept)
    credentials_removed: bool = False

    def notes(self) -> dict[str, Any]:
        """What to record beside the measurement (empty when nothing was changed)."""
        out: dict[str, Any] = {}
        if self.given:
            out["given"] = self.given
        if self.credentials_removed:
            out["credentials_removed"] = True
        return out


#: characters left as they are when percent-encoding a path, query or fragment
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


def target_url(text: str) -> TargetURL:
    """Validate and normalise one target URL, or raise InputError saying why not."""
    if not text:
        raise InputError("empty URL")
    if len(text) > MAX_URL_LENGTH:
        raise InputError(
            f"URL longer than {MAX_URL_LENGTH} characters ({len(text)}): {_show(text)}"
        )
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InputError(f"URL contains white space or control characters: {_show(text)}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"invalid URL {_show(text)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InputError(f"unsupported scheme in {_show(text)} (only http and https)")
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    removed = bool(at)
    if removed:
        netloc = hostport
        text = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    host = parts.hostname or ""
    if not host:
        raise InputError(f"no host in {_show(text)}")
    if port == 0:
        raise InputError(f"invalid port 0 in {_show(text)}")
    if netloc.startswith("["):
        if "%" in netloc.split("]", 1)[0]:
            raise InputError(
                f"IPv6 zone ids name one of your own network interfaces and cannot be "
                f"measured: {_show(text)}"
            )
        ascii_host = netloc[: netloc.index("]") + 1] if "]" in netloc else netloc
        from probe.netaddr import parse_ip

        if parse_ip(ascii_host) is None:
            raise InputError(f"invalid IPv6 address in {_show(text)}")
    else:
        ascii_host = _ascii_host(host, text)
    hostport_out = ascii_host if port is None else f"{ascii_host}:{port}"
    url = urlunsplit(
        (
            scheme,
            hostport_out,
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )
    if len(url) > MAX_URL_LENGTH:
        raise InputError(f"URL longer than {MAX_URL_LENGTH} characters once encoded: {_show(text)}")
    return TargetURL(url=url, given=text if text != url else "", credentials_removed=removed)


def _ascii_host(host: str, text: str) -> str:
    """The host as it goes on the wire: ASCII names as given (lower case), IDNs as A-labels."""
    if host.isascii():
        if not host.strip("."):
            raise InputError(f"invalid host in {_show(text)}")
        return host
    import idna

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InputError(
            f"host is not a valid internationalised domain name ({exc}): {_show(text)}"
        ) from None


# --- JSON documents -----------------------------------------------------------------------------


def json_document(data: bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse one JSON document and hold it to the depth and number limits."""
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"{what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc}") from None
    check_json_limits(doc, what=what, max_depth=max_depth)
    return doc


def check_json_limits(doc: Any, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse documents nested deeper than ``max_depth``, integers beyond 64 bits and floats
    that are not finite (an iterative walk: no recursion, whatever the depth)."""
    stack: list[tuple[Any, str, int]] = [(doc, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= max_depth:
                raise InputError(f"{what} is nested deeper than {max_depth} levels at {path}")
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            if depth >= max_depth:
                raise InputError(f"{what} is nested deeper than {max_depth} levels at {path}")
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        elif isinstance(value, int):
            if not -_INT64 <= value < _INT64:
                raise InputError(f"{what} has an integer beyond 64 bits at {_cut(path)}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{what} has a number that is not finite at {_cut(path)}")


def _cut(path: str, limit: int = 120) -> str:
    return path if len(path) <= limit else path[:limit] + "..."
