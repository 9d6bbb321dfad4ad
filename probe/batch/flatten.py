"""Flatten one parsed measurement into table rows (pure; tolerant of any JSON shape).

One *measurement row* (metadata, the recorded verdict, and the re-derived verdict added by the
caller) and *observation rows*, one per measurement x stage x endpoint as ooni/data does: one
per DNS answer (or per failed/empty query), per TCP connect, per TLS handshake and per HTTP
transaction. Every value is type-checked: a wrong type becomes null and a short note in the
measurement's ``issues`` list (e.g. ``probe_asn:int``), so odd data is visible, never fatal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from probe.analysis.urls import url_parts
from probe.netaddr import split_endpoint

#: 2**62 - 1: compiled (mypyc), ints up to this in size are unboxed ("short"), cheap to compare
_SMALL: Final = 4611686018427387903

_CC = re.compile(r"^[A-Z]{2}$")
_ASN = re.compile(r"^AS[0-9]{1,10}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")

#: partition values used when the measurement does not say
UNKNOWN_DAY = "unknown"
UNKNOWN_CC = "ZZ"


def _s(value: Any) -> str | None:
    return value if type(value) is str else None


def _i(value: Any) -> int | None:
    """``value`` if it is an int64 (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if -_SMALL <= value <= _SMALL:  # compiled: a compare of tagged ints, no boxed 2**63
        return value
    return value if -(2**63) <= value < 2**63 else None


def _f(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _failure(value: Any) -> str | None:
    # old MK data writes false for "no failure"
    return value if isinstance(value, str) and value else None


def _tags(value: Any) -> str | None:
    if not value:
        return "" if type(value) is list else None
    if type(value) is list:
        return ",".join(t for t in value if isinstance(t, str))
    return None


def parse_time(value: Any) -> datetime | None:
    """OONI's ``YYYY-MM-DD hh:mm:ss`` (and ISO-8601 variants) as a naive UTC datetime."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _split_address(address: str | None) -> tuple[str | None, int | None]:
    if not address:
        return None, None
    try:
        return split_endpoint(address)
    except ValueError:
        return address.strip("[]"), None


def _hostname(url: str | None) -> str | None:
    if not url:
        return None
    return _url_hostname(url)


@lru_cache(maxsize=1 << 16)
def _url_hostname(url: str) -> str | None:
    """``urlsplit(url).hostname``, memoised per process (the URLs of a batch repeat: targets,
    redirects)."""
    try:
        return url_parts(url)[1]
    except ValueError:
        return None


def measurement_fields(msmt: dict[str, Any], issues: list[str]) -> dict[str, Any]:
    """The measurement-level columns that do not depend on the verdict."""
    for key in ("probe_asn", "probe_cc", "input", "report_id", "measurement_start_time"):
        value = msmt.get(key)
        if value is not None and not isinstance(value, str):
            issues.append(f"{key}:{type(value).__name__}")
    cc = _s(msmt.get("probe_cc"))
    asn = _s(msmt.get("probe_asn"))
    if cc is not None and not _CC.match(cc):
        issues.append("probe_cc:format")
        cc = None
    if asn is not None and not _ASN.match(asn):
        issues.append("probe_asn:format")
        asn = None
    start = _s(msmt.get("measurement_start_time"))
    when = parse_time(start)
    if start is not None and when is None:
        issues.append("measurement_start_time:format")
    elif start is not None and "T" in start:
        issues.append("measurement_start_time:iso8601")
    test_name = _s(msmt.get("test_name"))
    url = _s(msmt.get("input"))
    test_keys = msmt.get("test_keys")
    if type(test_keys) is not dict:
        issues.append("test_keys:missing")
        test_keys = {}
    if "input" not in msmt:
        issues.append("input:absent")
    return {
        "measurement_uid": _s(msmt.get("measurement_uid")),
        "report_id": _s(msmt.get("report_id")),
        "test_name": test_name,
        "test_version": _s(msmt.get("test_version")),
        "software_name": _s(msmt.get("software_name")),
        "software_version": _s(msmt.get("software_version")),
        "input": url,
        "target": url if url else test_name,
        "hostname": _hostname(url),
        "probe_cc": cc,
        "probe_asn": asn,
        "probe_network_name": _s(msmt.get("probe_network_name")),
        "resolver_asn": _s(msmt.get("resolver_asn")),
        "measurement_start_time": when,
        "day": when.date() if when is not None else None,
        "recorded_blocking": _recorded_blocking(test_keys.get("blocking")),
        "recorded_accessible": test_keys.get("accessible")
        if isinstance(test_keys.get("accessible"), bool)
        else None,
    }


def _recorded_blocking(value: Any) -> str | None:
    if value is False:
        return "false"
    return value if isinstance(value, str) and value else None


def partition_of(fields: Mapping[str, Any]) -> tuple[str, str]:
    """``(date, cc)`` partition keys: ``YYYY-MM-DD`` or ``unknown``, ISO country or ``ZZ``."""
    day = fields.get("day")
    return (day.isoformat() if day is not None else UNKNOWN_DAY, fields.get("probe_cc") or "ZZ")


#: the stage-specific observation columns, in ``OBSERVATION_SCHEMA`` order (after the eight
#: columns shared by every observation of a measurement, which the step puts in front)
STAGE_COLUMNS = (
    "stage",
    "transaction_id",
    "tags",
    "hostname",
    "query_type",
    "engine",
    "resolver",
    "answer_type",
    "ip",
    "answer",
    "answer_asn",
    "port",
    "failure",
    "t0",
    "t",
    "tls_version",
    "cipher_suite",
    "http_url",
    "http_method",
    "http_status",
    "http_body_length",
    "http_body_truncated",
)

#: an observation row is a tuple in ``STAGE_COLUMNS`` order: tuples, not dicts, because the
#: step turns a chunk's rows into Arrow columns with one ``zip`` (dict rows through
#: ``Table.from_pylist`` cost several times more than the whole flattening)
StageRow = tuple[Any, ...]


def _dicts(value: Any) -> list[dict[str, Any]]:
    if type(value) is not list:
        return []
    return [item for item in value if type(item) is dict]


def _dns_rows(test_keys: dict[str, Any], rows: list[StageRow]) -> None:
    # each row is one tuple display, no ``*`` unpacking and no ``+``: compiled, those built
    # the row two or three times over (a DNS answer is most of a measurement's rows)
    for q in _dicts(test_keys.get("queries")):
        tid, tags = _i(q.get("transaction_id")), _tags(q.get("tags"))
        name, qtype = _s(q.get("hostname")), _s(q.get("query_type"))
        engine, resolver = _s(q.get("engine")), _s(q.get("resolver_address"))
        failure, t0, t = _failure(q.get("failure")), _f(q.get("t0")), _f(q.get("t"))
        answers = _dicts(q.get("answers"))
        if not answers:
            rows.append(
                ("dns", tid, tags, name, qtype, engine, resolver, None, None, None, None, None,
                 failure, t0, t, None, None, None, None, None, None, None)
            )  # fmt: skip
        for a in answers:
            rows.append(
                ("dns", tid, tags, name, qtype, engine, resolver, _s(a.get("answer_type")),
                 _s(a.get("ipv4")) or _s(a.get("ipv6")), _s(a.get("hostname")),
                 _i(a.get("asn")), None, failure, t0, t, None, None, None, None, None, None, None)
            )  # fmt: skip


def _tcp_rows(test_keys: dict[str, Any], rows: list[StageRow]) -> None:
    for c in _dicts(test_keys.get("tcp_connect")):
        status = c.get("status")
        failure = _failure(status.get("failure")) if type(status) is dict else None
        rows.append(
            (
                "tcp",
                _i(c.get("transaction_id")),
                _tags(c.get("tags")),
                None,
                None,
                None,
                None,
                None,
                _s(c.get("ip")),
                None,
                None,
                _i(c.get("port")),
                failure,
                _f(c.get("t0")),
                _f(c.get("t")),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
        )


def _tls_rows(test_keys: dict[str, Any], rows: list[StageRow]) -> None:
    for h in _dicts(test_keys.get("tls_handshakes")):
        ip, port = _split_address(_s(h.get("address")))
        rows.append(
            (
                "tls",
                _i(h.get("transaction_id")),
                _tags(h.get("tags")),
                _s(h.get("server_name")),
                None,
                None,
                None,
                None,
                ip,
                None,
                None,
                port,
                _failure(h.get("failure")),
                _f(h.get("t0")),
                _f(h.get("t")),
                _s(h.get("tls_version")),
                _s(h.get("cipher_suite")),
                None,
                None,
                None,
                None,
                None,
            )
        )


def _body_length(body: Any) -> int | None:
    if isinstance(body, str):
        return len(body)
    if type(body) is dict and isinstance(body.get("data"), str):
        return len(body["data"]) * 3 // 4  # base64
    return None


def _http_rows(test_keys: dict[str, Any], rows: list[StageRow]) -> None:
    for r in _dicts(test_keys.get("requests")):
        request = r.get("request")
        response = r.get("response")
        request = request if type(request) is dict else {}
        response = response if type(response) is dict else {}
        url = _s(request.get("url"))
        ip, port = _split_address(_s(r.get("address")))
        truncated = response.get("body_is_truncated")
        rows.append(
            (
                "http",
                _i(r.get("transaction_id")),
                _tags(r.get("tags")),
                _hostname(url),
                None,
                None,
                None,
                None,
                ip,
                None,
                None,
                port,
                _failure(r.get("failure")),
                _f(r.get("t0")),
                _f(r.get("t")),
                None,
                None,
                url,
                _s(request.get("method")),
                _i(response.get("code")),
                _body_length(response.get("body")),
                truncated if isinstance(truncated, bool) else None,
            )
        )


def observation_rows(msmt: dict[str, Any]) -> list[StageRow]:
    """Observation rows of one measurement, stage by stage (dns, tcp, tls, http), as tuples in
    ``STAGE_COLUMNS`` order (``dict(zip(STAGE_COLUMNS, row))`` for a readable view)."""
    test_keys = msmt.get("test_keys")
    if type(test_keys) is not dict:
        return []
    rows: list[StageRow] = []
    _dns_rows(test_keys, rows)
    _tcp_rows(test_keys, rows)
    _tls_rows(test_keys, rows)
    _http_rows(test_keys, rows)
    return rows
