"""OONI's collector protocol, server side, as pure functions (ooni/spec bk-003-collector.md).

* **Open a report** (``POST /report``): the template's fields are checked against the spec's
  regular expressions; ``format`` must be ``"json"`` (YAML, ``content`` and ``test_helper`` are
  the legacy forms the spec lets a collector refuse); ``probe_ip`` is dropped unread. The answer
  is ``{"backend_version", "report_id", "supported_formats": ["json"]}``.
* **Report ids** have OONI's modern shape
  ``<YYYYMMDDThhmmssZ>_<testname without _>_<CC>_<ASN digits>_n<collector>_<random>`` with 32
  random bytes (256 bits, as the spec asks) in the tail. Our extension: the template may carry
  ``x_report_id``, the id the probe minted when it wrote the measurements (before any upload,
  see :mod:`probe.meta`); when that id is well formed and names the same test, country and ASN
  as the template, the collector keeps it, so the uploaded bytes are the bytes of the
  volunteer's file. OONI's collectors ignore the key and hand out their own id.
* **Reports are stateless**, as OONI's own backend is today: a submission is accepted for any
  well-formed report id whose test name, country and ASN match the measurement's (the spec's
  "report_id inside content must match the URL" check, plus the backend's consistency checks).
  The store is append-only: nobody can change or delete what was stored.
* **Submissions** are ``{"format": "json", "content": {...}}``: the content's top-level keys are
  validated against df-000 (:class:`Envelope`); measurements from our own software are further
  validated with the full typed model of :mod:`probe.archival`. Other software's ``test_keys``
  are not judged (OONI's collector does not either, and real data has shapes our typed models
  refuse).
* **Deduplication**: a measurement's identity is its content without ``report_id`` (and the
  backend-only keys), serialised canonically (sorted keys) and hashed with SHA-512. A second
  submission of the same measurement (a probe that crashed between sending and reading the
  answer) gets the first one's ``measurement_uid`` and is not stored again.
* **measurement_uid** has OONI's form ``<YYYYMMDDhhmmss.ffffff>_<CC>_<testname>_<16 hex>`` (the
  receive time, then the first 16 hex digits of the digest above).

Where we differ from OONI's backend, on purpose: measurements with ``AS0``/``ZZ`` (a volunteer
who withholds network or country) are stored, not silently dropped.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from probe import SOFTWARE_NAME

#: what our answers say in ``backend_version`` (matches the spec's software_version regex)
BACKEND_VERSION = "censorprobe-collector-1"
SUPPORTED_FORMATS = ["json"]

ASN_RE = re.compile(r"AS[0-9]{1,10}\Z")
CC_RE = re.compile(r"[A-Z]{2}\Z")
SOFTWARE_RE = re.compile(r"[0-9A-Za-z_.+-]+\Z")
TEST_NAME_RE = re.compile(r"[a-zA-Z0-9_\- ]+\Z")
TIME_LAYOUT = "%Y-%m-%d %H:%M:%S"
REPORT_ID_RE = re.compile(
    r"(?P<stamp>[0-9]{8}T[0-9]{6}Z)_(?P<test>[a-z0-9]{1,40})_(?P<cc>[A-Z]{2})_"
    r"(?P<asn>[0-9]{1,10})_n(?P<collector>[0-9]{1,4})_(?P<tail>[A-Za-z0-9]{16,64})\Z"
)
#: keys the backend adds (df-000): never part of a measurement's identity
BACKEND_KEYS = ("report_id", "measurement_uid", "backend_version", "bucket_date", "report_filename")


class ProtocolError(Exception):
    """A request the collector refuses: HTTP ``status``, a short ``code`` and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str, code: str = "bad_request") -> ProtocolError:
    return ProtocolError(400, code, message)


def _check(pattern: re.Pattern[str], value: str, name: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"{name} {value[:64]!r} does not match {pattern.pattern}")
    return value


def _check_time(value: str) -> str:
    try:
        datetime.strptime(value, TIME_LAYOUT)
    except ValueError:
        raise ValueError(f"{value[:32]!r} is not a UTC time as YYYY-MM-DD hh:mm:ss") from None
    return value


def test_name_in_id(test_name: str) -> str:
    """The test name as report ids and store paths write it: lower case, no ``_``/``-``/space."""
    return re.sub(r"[_\- ]", "", test_name.lower())


class _Checked(BaseModel):
    """The spec's regular expressions on the fields a template and a measurement share."""

    @field_validator("probe_asn", check_fields=False)
    @classmethod
    def _asn(cls, v: str) -> str:
        return _check(ASN_RE, v, "probe_asn")

    @field_validator("probe_cc", check_fields=False)
    @classmethod
    def _cc(cls, v: str) -> str:
        return _check(CC_RE, v, "probe_cc")

    @field_validator("software_name", "software_version", "test_version", check_fields=False)
    @classmethod
    def _software(cls, v: str) -> str:
        return _check(SOFTWARE_RE, v, "software name/version")

    @field_validator("test_name", check_fields=False)
    @classmethod
    def _test(cls, v: str) -> str:
        _check(TEST_NAME_RE, v, "test_name")
        if not test_name_in_id(v):
            raise ValueError("test_name is empty")
        return v


class OpenReport(_Checked):
    """The body of ``POST /report`` (the report template)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    data_format_version: str
    format: str
    probe_asn: str
    probe_cc: str
    software_name: str
    software_version: str
    test_name: str
    test_version: str
    test_start_time: str | None = None
    #: our extension: the id the probe already wrote into its measurements
    x_report_id: str | None = None

    @field_validator("test_start_time")
    @classmethod
    def _start(cls, v: str | None) -> str | None:
        return None if v is None else _check_time(v)


def _loads_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object")
    return value


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "body"
    return f"{where}: {err.get('msg', 'invalid')}"


def parse_open(body: bytes) -> OpenReport:
    """Validate ``POST /report``; raises :class:`ProtocolError` (400) with the first problem."""
    data = _loads_object(body, "the report template")
    data.pop("probe_ip", None)  # deprecated; never read, never logged
    for legacy in ("content", "test_helper"):
        if legacy in data:
            raise bad_request(f"{legacy!r} is a legacy field this collector does not accept")
    if data.get("format") != "json":
        raise ProtocolError(
            400, "unsupported_format", f"format must be 'json' (got {data.get('format')!r})"
        )
    try:
        return OpenReport.model_validate(data)
    except ValidationError as exc:
        raise bad_request(_first_error(exc)) from None


@dataclass(frozen=True, slots=True)
class ReportId:
    """The parts of a modern report id."""

    stamp: str
    test: str
    cc: str
    asn: int
    collector: str
    tail: str


def parse_report_id(text: str) -> ReportId | None:
    match = REPORT_ID_RE.match(text)
    if match is None:
        return None
    return ReportId(
        stamp=match["stamp"],
        test=match["test"],
        cc=match["cc"],
        asn=int(match["asn"]),
        collector=match["collector"],
        tail=match["tail"],
    )


def mint_report_id(template: OpenReport, *, now: datetime, collector_id: int) -> str:
    """A fresh modern report id for ``template`` (256 random bits in the tail)."""
    tail = base64.b64encode(secrets.token_bytes(32), altchars=b"oo").decode().rstrip("=")
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    asn = int(template.probe_asn[2:])
    test = test_name_in_id(template.test_name)
    return f"{stamp}_{test}_{template.probe_cc}_{asn}_n{collector_id}_{tail}"


def report_id_for(template: OpenReport, *, now: datetime, collector_id: int) -> str:
    """The report id to hand out: the probe's own ``x_report_id`` when it is well formed and
    consistent with the template, else a fresh one."""
    proposed = template.x_report_id
    if proposed is not None:
        parts = parse_report_id(proposed)
        if (
            parts is not None
            and parts.test == test_name_in_id(template.test_name)
            and parts.cc == template.probe_cc
            and parts.asn == int(template.probe_asn[2:])
        ):
            return proposed
    return mint_report_id(template, now=now, collector_id=collector_id)


class Envelope(_Checked):
    """The df-000 top-level keys every submitted measurement must have (others are kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    data_format_version: str
    measurement_start_time: str
    test_start_time: str
    probe_asn: str
    probe_cc: str
    report_id: str
    software_name: str
    software_version: str
    test_name: str
    test_version: str
    test_keys: dict[str, Any] | None
    input: str | None = None
    annotations: dict[str, Any] | None = None
    test_runtime: int | float | None = None

    @field_validator("measurement_start_time", "test_start_time")
    @classmethod
    def _time(cls, v: str) -> str:
        return _check_time(v)


@dataclass(frozen=True, slots=True)
class Submission:
    """A validated measurement, ready for the journal."""

    content: dict[str, Any]
    #: SHA-512 of the canonical content without the backend keys (the dedup identity)
    digest: bytes
    cc: str
    #: test name as in report ids and store paths (``webconnectivity``)
    test: str


def canonical_digest(content: dict[str, Any]) -> bytes:
    """SHA-512 of the measurement without its backend keys, keys sorted at every level."""
    core = {k: v for k, v in content.items() if k not in BACKEND_KEYS}
    return hashlib.sha512(orjson.dumps(core, option=orjson.OPT_SORT_KEYS)).digest()


def parse_submission(report_id: str, body: bytes) -> Submission:
    """Validate ``POST /report/{report_id}``; raises :class:`ProtocolError` (400/404)."""
    parts = parse_report_id(report_id)
    if parts is None:
        raise ProtocolError(404, "no_such_report", "not a report id this collector can accept")
    data = _loads_object(body, "the submission")
    fmt: Literal["json"] | Any = data.get("format")
    if fmt != "json":
        raise ProtocolError(400, "unsupported_format", f"format must be 'json' (got {fmt!r})")
    content = data.get("content")
    if not isinstance(content, dict):
        raise bad_request("content must be a JSON object (a measurement)")
    try:
        envelope = Envelope.model_validate(content)
        if envelope.software_name == SOFTWARE_NAME:
            from probe.archival import load_measurement

            load_measurement(content)  # our own measurements: the full typed model
    except ValidationError as exc:
        raise bad_request(f"not a valid measurement: {_first_error(exc)}") from None
    if envelope.report_id != report_id:
        raise bad_request("the measurement's report_id differs from the one in the URL")
    test = test_name_in_id(envelope.test_name)
    if (parts.test, parts.cc, parts.asn) != (test, envelope.probe_cc, int(envelope.probe_asn[2:])):
        raise bad_request(
            "the measurement's test_name, probe_cc or probe_asn differ from its report's"
        )
    return Submission(content=content, digest=canonical_digest(content), cc=parts.cc, test=test)


def measurement_uid(received: datetime, submission: Submission) -> str:
    """OONI's ``<YYYYMMDDhhmmss.ffffff>_<CC>_<testname>_<16 hex>`` for this submission."""
    stamp = received.astimezone(UTC).strftime("%Y%m%d%H%M%S.%f")
    return f"{stamp}_{submission.cc}_{submission.test}_{submission.digest.hex()[:16]}"


def stored_line(submission: Submission, uid: str) -> bytes:
    """The line filed in the store: the measurement as received, plus its ``measurement_uid``."""
    return orjson.dumps(
        {**submission.content, "measurement_uid": uid}, option=orjson.OPT_APPEND_NEWLINE
    )
