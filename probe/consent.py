"""Informed consent and the publishing choices: the text, the quiz, and how they are stored.

A volunteer agrees once (``probe onboard``) before the first measurement. What they agree to is
the text below, identified by :data:`CONSENT_VERSION`: when the text changes in substance (a new
risk, a change in what is published), the version goes up and every volunteer is asked again;
typo fixes keep the version. The record lives in the config file (:mod:`probe.configfile`)::

    [consent]                       # written by `probe onboard`
    version = 1                     # the text agreed to
    given = 2026-12-05T10:00:00Z    # when (UTC)
    method = "interactive"          # or "--yes" (scripted)

    [publish]
    upload = true                   # send each measurement to the collector
    collector_url = "https://collector.example.org/"
    proxy = "socks5h://127.0.0.1:9050"   # optional: uploads through this proxy (Tor)
    include_asn = true
    include_cc = true
    include_ip = false

:func:`require` is the one call ``probe run`` makes before measuring: ``None`` when consent is
there, else it prints the one line of :func:`check` and returns the exit status 2. Everything
here is pure but the reading and writing of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from probe import configfile

#: the consent text's version; raise it when the text changes in substance (see module doc)
CONSENT_VERSION = 1

#: how consent was given
INTERACTIVE = "interactive"
SCRIPTED = "--yes"

#: proxy URL schemes httpx can use for uploads (socks5h: the proxy resolves the name)
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")

#: (title, paragraphs) shown in order by ``probe onboard`` and ``probe onboard --text``
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "What censorprobe does",
        (
            "censorprobe checks whether your internet provider blocks websites and apps. For "
            "each site on its list it looks up the name, connects, and fetches the page, step "
            "by step, and compares what it saw with a control server outside your country. "
            "Each result (a measurement) is written to a file on this computer.",
        ),
    ),
    (
        "The risks",
        (
            "- Running it can be seen. Anyone who watches your connection (your provider, "
            "your employer, your government) can see the sites it connects to, some of which "
            "may be banned or offensive, and may tell that you run a censorship measurement "
            "tool. censorprobe hides none of this: it is not a privacy or circumvention tool.",
            "- In some countries, measuring censorship or visiting the tested sites may be "
            "illegal or dangerous. You know your situation best; if in doubt, do not run it. "
            "OONI's guide to the risks (https://ooni.org/about/risks/) applies here too.",
            "- Measurements are published. Unless you turn uploading off, each one is sent to "
            "the collector whose address you give in the next step, and what it receives "
            "becomes open data that anyone can read, for good. censorprobe has no collector of "
            "its own and sends nothing to one you did not name: without a collector, your "
            "measurements stay on this computer and wait until you name one.",
        ),
    ),
    (
        "What a measurement contains",
        (
            "- The sites tested and what happened at each step; when; the software version.",
            "- The country and the network (its AS number, e.g. AS12389) you measured from, "
            "unless you turn them off.",
            "- Never your IP address, unless you opt in: censorprobe removes it from every "
            "header, page and error message before anything is written.",
            "- If the collector is blocked where you are, uploads can go through a proxy you "
            "choose (Tor's SOCKS port, for example); measurements that cannot be sent wait on "
            "this computer and go out later.",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Question:
    """A true/false statement of the quiz, the right answer and why (shown when wrong)."""

    statement: str
    answer: bool
    explanation: str


QUIZ: tuple[Question, ...] = (
    Question(
        "Anyone monitoring my internet connection may be able to see that I run censorprobe.",
        True,
        "censorprobe is not a privacy tool: its connections are visible to your provider and "
        "to anyone watching your network.",
    ),
    Question(
        "My measurements will be published as open data, unless I turn uploading off.",
        True,
        "Uploaded measurements are published for anyone to read; turn uploading off if you "
        "want to keep them on this computer.",
    ),
    Question(
        "Published measurements contain my IP address.",
        False,
        "Your IP address is removed from everything written, unless you opt in. Your country "
        "and network are published, unless you turn them off.",
    ),
)


class ConsentError(ValueError):
    """A consent or publishing setting is invalid (one line, names the key)."""


@dataclass(frozen=True, slots=True)
class Publishing:
    """What the volunteer chose to publish, and how uploads travel."""

    upload: bool = True
    collector_url: str | None = None
    proxy: str | None = None
    include_asn: bool = True
    include_cc: bool = True
    include_ip: bool = False

    @property
    def uploads(self) -> bool:
        """Uploads happen: switched on and a collector to send to."""
        return self.upload and self.collector_url is not None

    def to_table(self) -> dict[str, Any]:
        return {
            "upload": self.upload,
            "collector_url": self.collector_url,
            "proxy": self.proxy,
            "include_asn": self.include_asn,
            "include_cc": self.include_cc,
            "include_ip": self.include_ip,
        }


@dataclass(frozen=True, slots=True)
class Consent:
    version: int
    given: datetime
    method: str

    @property
    def current(self) -> bool:
        return self.version >= CONSENT_VERSION

    def to_table(self) -> dict[str, Any]:
        return {"version": self.version, "given": self.given, "method": self.method}


def destination(publishing: Publishing) -> str:
    """Where the measurements go, in words (the last thing a volunteer reads before agreeing)."""
    if not publishing.upload:
        return "Your measurements stay on this computer (uploading is off)."
    if publishing.collector_url is None:
        return (
            "Your measurements stay on this computer until you name a collector "
            "(`probe onboard --collector URL`); they wait there to be uploaded."
        )
    route = f" through the proxy {redacted(publishing.proxy)}" if publishing.proxy else ""
    return f"Your measurements will be sent to the collector {publishing.collector_url}{route}."


def redacted(url: str) -> str:
    """A proxy URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_collector_url(url: str) -> str:
    """An http(s) URL with a host; returns it (trailing slash added). ConsentError otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConsentError(f"collector URL must be http(s)://HOST[:PORT]/..., got {url!r}")
    text = url.strip()
    return text if text.endswith("/") else text + "/"


def check_proxy_url(url: str) -> str:
    """``http://``, ``https://``, ``socks5://`` or ``socks5h://`` ``[user:pass@]host:port``."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname or port is None:
        raise ConsentError(
            f"proxy must be {'|'.join(PROXY_SCHEMES)}://HOST:PORT (e.g. "
            f"socks5h://127.0.0.1:9050 for Tor), got {url!r}"
        )
    return url.strip()


def _bool(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConsentError(f"config file: {where}.{key} must be true or false")
    return value


def _text(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConsentError(f"config file: {where}.{key} must be a string")
    return value


def read(cfg: Mapping[str, Any]) -> tuple[Consent | None, Publishing]:
    """The consent record (None if absent) and the publishing choices of a parsed config."""
    publish = cfg.get("publish", {})
    if not isinstance(publish, Mapping):
        raise ConsentError("config file: publish must be a table")
    collector = _text(publish, "collector_url", "publish")
    proxy = _text(publish, "proxy", "publish")
    publishing = Publishing(
        upload=_bool(publish, "upload", True, "publish"),
        collector_url=check_collector_url(collector) if collector else None,
        proxy=check_proxy_url(proxy) if proxy else None,
        include_asn=_bool(publish, "include_asn", True, "publish"),
        include_cc=_bool(publish, "include_cc", True, "publish"),
        include_ip=_bool(publish, "include_ip", False, "publish"),
    )
    table = cfg.get("consent")
    if table is None:
        return None, publishing
    if not isinstance(table, Mapping):
        raise ConsentError("config file: consent must be a table")
    version, given, method = table.get("version"), table.get("given"), table.get("method")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ConsentError("config file: consent.version must be a whole number")
    if not isinstance(given, datetime):
        raise ConsentError("config file: consent.given must be a date and time")
    if given.tzinfo is None:
        given = given.replace(tzinfo=UTC)
    return Consent(version, given, str(method or "")), publishing


def load(path: Path | None = None) -> tuple[Consent | None, Publishing]:
    """:func:`read` on the config file (raises ConfigFileError / ConsentError)."""
    return read(configfile.load(path or configfile.config_path()))


def check(
    path: Path | None = None, *, command: str = "probe run", named: bool = False
) -> str | None:
    """``None`` when current consent is recorded, else the one line that says what to do.
    ``named``: ``path`` is a file the user named (``--config``), so it must exist; the default
    one may not exist yet (consent missing).

    ``probe run`` prints the line to stderr and exits 2::

        if (line := consent.check()) is not None:
            print(line, file=sys.stderr)
            return 2
    """
    where = path or configfile.config_path()
    try:
        given, _ = read(configfile.load(where, must_exist=named))
    except (configfile.ConfigFileError, ConsentError) as exc:
        return f"{command}: error: {exc}"
    if given is None:
        return (
            f"{command}: error: consent missing: run `probe onboard` once to read the risks and "
            f"agree (scripts: `probe onboard --yes`, see `probe onboard --help`); "
            f"config: {where}"
        )
    if not given.current:
        return (
            f"{command}: error: consent was given to an older text (version {given.version}, "
            f"now {CONSENT_VERSION}): run `probe onboard` to read what changed"
        )
    return None


def require(
    path: Path | None = None, *, command: str = "probe run", named: bool = False
) -> int | None:
    """The gate as one call: ``None`` when consent is there, else prints :func:`check`'s line
    to stderr and returns 2. ``probe run``: ``if (code := consent.require(args.config,
    named=args.config is not None)) is not None: return code``."""
    import sys

    line = check(path, command=command, named=named)
    if line is None:
        return None
    print(line, file=sys.stderr)
    return 2


def record(
    publishing: Publishing,
    *,
    method: str,
    path: Path | None = None,
    now: datetime | None = None,
) -> Consent:
    """Write consent (current version, now) and the publishing choices to the config file."""
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    consent = Consent(CONSENT_VERSION, when, method)
    configfile.update(
        path or configfile.config_path(),
        {"consent": consent.to_table(), "publish": publishing.to_table()},
        comment="written by `probe onboard`",
    )
    return consent


def withdraw(path: Path | None = None) -> None:
    """Remove the consent record (the publishing choices stay, for a later `probe onboard`)."""
    configfile.update(path or configfile.config_path(), {"consent": None})


def with_changes(publishing: Publishing, **changes: Any) -> Publishing:
    """``publishing`` with the given fields replaced (``None`` values are ignored)."""
    return replace(publishing, **{k: v for k, v in changes.items() if v is not None})


def consent_text(width: int = 78) -> str:
    """The whole consent text and quiz answers as plain text (``probe onboard --text``)."""
    import textwrap

    lines: list[str] = [f"censorprobe informed consent, version {CONSENT_VERSION}", ""]
    for title, paragraphs in SECTIONS:
        lines += [title, "-" * len(title)]
        for paragraph in paragraphs:
            indent = "  " if paragraph.startswith("- ") else ""
            lines += textwrap.wrap(paragraph, width, subsequent_indent=indent)
        lines.append("")
    lines += ["What you should have understood", "-" * 31]
    for question in QUIZ:
        verdict = "true" if question.answer else "false"
        lines += textwrap.wrap(f"- {question.statement} ({verdict})", width, subsequent_indent="  ")
    return "\n".join(lines) + "\n"
