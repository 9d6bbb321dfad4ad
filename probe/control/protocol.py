"""The Web Connectivity test-helper protocol (reference/ooni-format.md 10.2), pure code.

Request validation (``parse_request``), the TH's legacy failure vocabulary (the TH answers
``dns_name_error``, ``connection_refused_error``... where the probe writes modern strings; the
TLS map stays modern), the ``ip_info`` flag bits, the ports to measure and the small helpers the
response needs (``<title>``, one header value per name). No I/O here.

Request errors raise :class:`RequestError` carrying the HTTP status and a short machine code
(``bad_json``, ``bad_request``, ``bad_url``, ``too_many_endpoints``, ``bad_endpoint``).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pydantic

from probe.archival import ControlRequest
from probe.netaddr import join_endpoint, parse_ip, split_endpoint
from probe.vocabulary import Failure, THFailure

#: ip_info flag bits (probe-cli model.THIPInfoFlag*)
FLAG_RESOLVED_BY_PROBE = 1
FLAG_RESOLVED_BY_TH = 2
FLAG_BOGON = 4
FLAG_VALID_FOR_DOMAIN = 8

#: the only request headers the TH forwards when fetching
FORWARDED_HEADERS = ("User-Agent", "Accept", "Accept-Language")
MAX_HEADER_VALUE = 1024

# legacy failure strings of the TH (probe.vocabulary.THFailure)
DNS_NAME_ERROR = THFailure.DNS_NAME_ERROR.value
DNS_SERVER_FAILURE = THFailure.DNS_SERVER_FAILURE.value
DNS_LOOKUP_ERROR = THFailure.DNS_LOOKUP_ERROR.value
CONNECTION_REFUSED_ERROR = THFailure.CONNECTION_REFUSED_ERROR.value
CONNECT_ERROR = THFailure.CONNECT_ERROR.value
UNKNOWN_ERROR = THFailure.UNKNOWN_ERROR.value
GENERIC_TIMEOUT_ERROR = Failure.GENERIC_TIMEOUT_ERROR.value

_DNS_SERVER_FAILURES = frozenset(
    {
        Failure.DNS_REFUSED_ERROR,
        Failure.DNS_SERVFAIL_ERROR,
        Failure.DNS_SERVER_MISBEHAVING,
        Failure.DNS_TEMPORARY_FAILURE,
        Failure.DNS_NON_RECOVERABLE_FAILURE,
        Failure.DNS_REPLY_WITH_WRONG_QUERY_ID,
    }
)
_DNS_FAILURES = _DNS_SERVER_FAILURES | {
    Failure.DNS_NXDOMAIN_ERROR,
    Failure.DNS_NO_ANSWER,
    Failure.DNS_BOGON_ERROR,
    Failure.ANDROID_DNS_CACHE_NO_DATA,
}


class RequestError(Exception):
    """A request the TH refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Target:
    """A validated control request."""

    url: str
    scheme: str
    host: str  # without brackets
    port: int | None  # explicit port of the URL
    probe_ips: tuple[str, ...]  # IPs of the probe's endpoints, deduplicated, in order
    headers: tuple[tuple[str, str], ...]  # the forwarded headers
    request: ControlRequest

    @property
    def ports(self) -> tuple[int, ...]:
        """The URL's port if given, else 443 for https, else both 80 and 443 (OONI 10.2)."""
        if self.port is not None:
            return (self.port,)
        return (443,) if self.scheme == "https" else (80, 443)


def parse_request(body: bytes, *, max_endpoints: int, max_url_length: int = 4096) -> Target:
    """Validate a request body; raises :class:`RequestError`."""
    try:
        request = ControlRequest.model_validate_json(body, strict=True)
    except pydantic.ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise RequestError(400, "bad_json", "body is not valid JSON") from None
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()[:5])
        raise RequestError(400, "bad_request", f"wrong or missing fields: {where}") from None
    url, scheme, host, port = _parse_url(request.http_request, max_url_length=max_url_length)
    endpoints = request.tcp_connect or []
    if len(endpoints) > max_endpoints:
        raise RequestError(
            400, "too_many_endpoints", f"tcp_connect has more than {max_endpoints} endpoints"
        )
    ips: dict[str, None] = {}
    for item in endpoints:
        ips[_parse_endpoint(item)] = None
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        probe_ips=tuple(ips),
        headers=_forwarded_headers(request.http_request_headers),
        request=request,
    )


def _parse_url(text: str, *, max_url_length: int) -> tuple[str, str, str, int | None]:
    if len(text) > max_url_length:
        raise RequestError(400, "bad_url", "http_request is too long")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise RequestError(400, "bad_url", "http_request contains spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise RequestError(400, "bad_url", "http_request is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RequestError(400, "bad_url", "http_request must be an http:// or https:// URL")
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.username is not None or parts.password is not None:
        raise RequestError(400, "bad_url", "http_request needs a host and no credentials")
    if port == 0:
        raise RequestError(400, "bad_url", "port 0 is not allowed")
    if parse_ip(host) is None and not _is_hostname(host):
        raise RequestError(400, "bad_url", "http_request has an invalid host name")
    return text, scheme, host, port


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")


def _is_hostname(host: str) -> bool:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_host) <= 253 and all(_LABEL.match(x) for x in ascii_host.split("."))


def _parse_endpoint(item: str) -> str:
    try:
        ip, port = split_endpoint(item)
    except ValueError:
        raise RequestError(400, "bad_endpoint", "tcp_connect items must be ip:port") from None
    addr = parse_ip(ip)
    if addr is None or "%" in ip or not 0 < port < 65536 or join_endpoint(ip, port) != item:
        raise RequestError(400, "bad_endpoint", "tcp_connect items must be ip:port") from None
    return str(addr)


def _forwarded_headers(headers: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in FORWARDED_HEADERS:
        values = lowered.get(name.lower())
        if not values:
            continue
        value = values[0]
        if len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
            raise RequestError(400, "bad_request", f"bad value for header {name}")
        out.append((name, value))
    return tuple(out)


# --- legacy failure vocabulary -------------------------------------------------------------


def dns_failure(failure: str | None) -> str | None:
    """The TH's DNS failure; ``dns_no_answer`` is a success with no addresses."""
    if failure is None or failure == Failure.DNS_NO_ANSWER:
        return None
    if failure == Failure.DNS_NXDOMAIN_ERROR:
        return DNS_NAME_ERROR
    if failure in _DNS_SERVER_FAILURES:
        return DNS_SERVER_FAILURE
    return UNKNOWN_ERROR


def tcp_failure(failure: str | None) -> str | None:
    if failure is None:
        return None
    if failure == Failure.GENERIC_TIMEOUT_ERROR:
        return GENERIC_TIMEOUT_ERROR
    if failure == Failure.CONNECTION_REFUSED:
        return CONNECTION_REFUSED_ERROR
    return CONNECT_ERROR


def http_failure(failure: str | None) -> str | None:
    if failure is None:
        return None
    if failure in _DNS_FAILURES or failure == DNS_LOOKUP_ERROR:
        return DNS_LOOKUP_ERROR
    if failure == Failure.GENERIC_TIMEOUT_ERROR:
        return GENERIC_TIMEOUT_ERROR
    if failure == Failure.CONNECTION_REFUSED:
        return CONNECTION_REFUSED_ERROR
    return UNKNOWN_ERROR


# --- response helpers ----------------------------------------------------------------------

_TITLE = re.compile(rb"(?is)<title[^>]*>([^<]{1,512})</title>")


def extract_title(body: bytes) -> str:
    match = _TITLE.search(body)
    if match is None:
        return ""
    return match.group(1).decode("utf-8", "replace").strip()


def canonical_header(name: str) -> str:
    """Go's canonical MIME header name: ``content-type`` -> ``Content-Type``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def single_value_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """One value per (canonical) name, the first one, as Go's ``Header.Get`` returns."""
    out: dict[str, str] = {}
    for name, value in headers:
        out.setdefault(canonical_header(name), value)
    return out


def failed_http_request(failure: str) -> dict[str, Any]:
    return {
        "body_length": -1,
        "discovered_h3_endpoint": "",
        "failure": failure,
        "title": "",
        "headers": {},
        "status_code": -1,
        "x_transfer": None,
    }
