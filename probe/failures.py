"""OONI failure strings (df-007 plus probe-cli netxlite) and the one place that classifies errors.

Vocabulary (the closed set, :class:`Failure`): one table, the class body below, where each row is
``NAME = ("failure_string", "ERRNO_NAME" | None)``. The errno column is the *only* source of the
errno -> failure mapping, in the way probe-cli generates ``errno.go`` from a single spec table.
Anything that cannot be classified becomes ``unknown_failure: <text>`` with every IP address (and
``ip:port``) scrubbed by :func:`scrub_ips`, so the evidence survives without leaking addresses.

:func:`classify` is total (it never raises) and never matches message text. It walks the
exception chain (``__cause__`` first, then ``__context__``), because trio re-raises ``OSError`` and
``ssl.SSLError`` as ``trio.BrokenResourceError`` with the original as the cause. For each link,
specific classifiers run before generic ones:

====================================  =======================================================
``trio.TooSlowError``, ``TimeoutError`` without errno, ``dns.exception.Timeout``,
httpcore timeouts                     ``generic_timeout_error``
``trio.Cancelled``, ``KeyboardInterrupt``  ``interrupted``
``socket.gaierror`` (by EAI code)     ``dns_nxdomain_error`` / ``dns_no_answer`` /
                                      ``dns_temporary_failure`` / ``dns_non_recoverable_failure``
                                      / ``dns_server_misbehaving``
``ssl.SSLCertVerificationError``      by X509 verify code: hostname mismatch ->
                                      ``ssl_invalid_hostname``; unknown issuer / self-signed ->
                                      ``ssl_unknown_authority``; anything else ->
                                      ``ssl_invalid_certificate``
``ssl.SSLEOFError``, ``SSLZeroReturnError``  ``eof_error``
other ``ssl.SSLError``                ``ssl_failed_handshake`` (TLS alert 112,
                                      ``unrecognized_name``, -> ``ssl_invalid_hostname``)
``OSError`` with a known errno        the errno column of :class:`Failure`
dnspython exceptions                  NXDOMAIN / NoAnswer / everything else
                                      ``dns_server_misbehaving``
``trio.ClosedResourceError``          ``connection_already_closed``
====================================  =======================================================

:class:`Operation` holds OONI's ``failed_operation`` strings. The operation never changes the
failure string except for an *unclassified* error during a DNS operation, which stays an
``unknown_failure`` as well: it is accepted so that callers record both facts together.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import ssl
from enum import StrEnum
from typing import Final

import dns.exception
import dns.resolver
import httpcore
import trio

UNKNOWN_FAILURE_PREFIX: Final = "unknown_failure: "
SCRUBBED: Final = "[scrubbed]"


class Failure(StrEnum):
    """OONI's closed set of failure strings (df-007 + netxlite). Value: the string itself."""

    errno_name: str | None

    def __new__(cls, value: str, errno_name: str | None = None) -> Failure:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.errno_name = errno_name
        return obj

    # --- deadlines, cancellation ---------------------------------------------------------
    GENERIC_TIMEOUT_ERROR = ("generic_timeout_error", None)
    TIMED_OUT = ("timed_out", "ETIMEDOUT")
    INTERRUPTED = ("interrupted", "EINTR")
    # --- connection level (errno.go) -----------------------------------------------------
    CONNECTION_REFUSED = ("connection_refused", "ECONNREFUSED")
    CONNECTION_RESET = ("connection_reset", "ECONNRESET")
    CONNECTION_ABORTED = ("connection_aborted", "ECONNABORTED")
    HOST_UNREACHABLE = ("host_unreachable", "EHOSTUNREACH")
    NETWORK_UNREACHABLE = ("network_unreachable", "ENETUNREACH")
    NETWORK_DOWN = ("network_down", "ENETDOWN")
    NETWORK_RESET = ("network_reset", "ENETRESET")
    ADDRESS_FAMILY_NOT_SUPPORTED = ("address_family_not_supported", "EAFNOSUPPORT")
    ADDRESS_IN_USE = ("address_in_use", "EADDRINUSE")
    ADDRESS_NOT_AVAILABLE = ("address_not_available", "EADDRNOTAVAIL")
    ALREADY_CONNECTED = ("already_connected", "EISCONN")
    BAD_ADDRESS = ("bad_address", "EFAULT")
    BAD_FILE_DESCRIPTOR = ("bad_file_descriptor", "EBADF")
    CONNECTION_ALREADY_IN_PROGRESS = ("connection_already_in_progress", "EALREADY")
    DESTINATION_ADDRESS_REQUIRED = ("destination_address_required", "EDESTADDRREQ")
    INVALID_ARGUMENT = ("invalid_argument", "EINVAL")
    MESSAGE_SIZE = ("message_size", "EMSGSIZE")
    NO_BUFFER_SPACE = ("no_buffer_space", "ENOBUFS")
    NO_PROTOCOL_OPTION = ("no_protocol_option", "ENOPROTOOPT")
    NOT_A_SOCKET = ("not_a_socket", "ENOTSOCK")
    NOT_CONNECTED = ("not_connected", "ENOTCONN")
    OPERATION_WOULD_BLOCK = ("operation_would_block", "EWOULDBLOCK")
    PERMISSION_DENIED = ("permission_denied", "EACCES")
    PROTOCOL_NOT_SUPPORTED = ("protocol_not_supported", "EPROTONOSUPPORT")
    WRONG_PROTOCOL_TYPE = ("wrong_protocol_type", "EPROTOTYPE")
    EOF_ERROR = ("eof_error", None)
    CONNECTION_ALREADY_CLOSED = ("connection_already_closed", None)
    # --- DNS -----------------------------------------------------------------------------
    DNS_NXDOMAIN_ERROR = ("dns_nxdomain_error", None)
    DNS_NO_ANSWER = ("dns_no_answer", None)
    DNS_REFUSED_ERROR = ("dns_refused_error", None)
    DNS_SERVFAIL_ERROR = ("dns_servfail_error", None)
    DNS_SERVER_MISBEHAVING = ("dns_server_misbehaving", None)
    DNS_REPLY_WITH_WRONG_QUERY_ID = ("dns_reply_with_wrong_query_id", None)
    DNS_BOGON_ERROR = ("dns_bogon_error", None)
    DNS_TEMPORARY_FAILURE = ("dns_temporary_failure", None)
    DNS_NON_RECOVERABLE_FAILURE = ("dns_non_recoverable_failure", None)
    ANDROID_DNS_CACHE_NO_DATA = ("android_dns_cache_no_data", None)
    # --- TLS / QUIC ----------------------------------------------------------------------
    SSL_INVALID_HOSTNAME = ("ssl_invalid_hostname", None)
    SSL_UNKNOWN_AUTHORITY = ("ssl_unknown_authority", None)
    SSL_INVALID_CERTIFICATE = ("ssl_invalid_certificate", None)
    SSL_FAILED_HANDSHAKE = ("ssl_failed_handshake", None)
    QUIC_INCOMPATIBLE_VERSION = ("quic_incompatible_version", None)
    # --- HTTP and application level ------------------------------------------------------
    HTTP_REQUEST_FAILED = ("http_request_failed", None)
    HTTP_UNEXPECTED_STATUS_CODE = ("http_unexpected_status_code", None)
    HTTP_UNEXPECTED_REDIRECT_URL = ("http_unexpected_redirect_url", None)
    HTTP_INVALID_REDIRECT_LOCATION_HOST = ("http_invalid_redirect_location_host", None)
    JSON_PARSE_ERROR = ("json_parse_error", None)


class Operation(StrEnum):
    """OONI ``failed_operation`` values."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    DNS_ROUND_TRIP = "dns_round_trip"
    TLS_HANDSHAKE = "tls_handshake"
    QUIC_HANDSHAKE = "quic_handshake"
    HTTP_ROUND_TRIP = "http_round_trip"
    READ = "read"
    WRITE = "write"
    READ_FROM = "read_from"
    WRITE_TO = "write_to"
    CLOSE = "close"
    UNKNOWN = "unknown"
    TOP_LEVEL = "top_level"


def _errno_table() -> dict[int, Failure]:
    table: dict[int, Failure] = {}
    for failure in Failure:
        if failure.errno_name is None:
            continue
        code = getattr(errno, failure.errno_name, None)
        if isinstance(code, int):
            table.setdefault(code, failure)
    # EPERM is reported by local firewalls exactly like EACCES
    table.setdefault(errno.EPERM, Failure.PERMISSION_DENIED)
    return table


_ERRNO: Final[dict[int, Failure]] = _errno_table()

# getaddrinfo EAI_* codes (values differ across platforms, so read them from `socket`)
_GAI: Final[dict[int, Failure]] = {
    code: failure
    for name, failure in (
        ("EAI_NONAME", Failure.DNS_NXDOMAIN_ERROR),
        ("EAI_NODATA", Failure.DNS_NO_ANSWER),
        ("EAI_ADDRFAMILY", Failure.DNS_NO_ANSWER),
        ("EAI_AGAIN", Failure.DNS_TEMPORARY_FAILURE),
        ("EAI_FAIL", Failure.DNS_NON_RECOVERABLE_FAILURE),
    )
    if isinstance(code := getattr(socket, name, None), int)
}

# OpenSSL X509_V_ERR_* verify codes
_X509_HOSTNAME: Final = frozenset({62, 63, 64})  # HOSTNAME / EMAIL / IP_ADDRESS_MISMATCH
_X509_UNKNOWN_AUTHORITY: Final = frozenset({2, 18, 19, 20, 21})
# SSLError.reason (an OpenSSL symbolic code, not message text) for TLS alert 112
_TLS_REASON_UNRECOGNIZED_NAME: Final = "TLSV1_UNRECOGNIZED_NAME"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first, each once (cycles are cut)."""
    out: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        out.append(cur)
        if cur.__cause__ is not None:
            todo.append(cur.__cause__)
        if cur.__context__ is not None:
            todo.append(cur.__context__)
        if isinstance(cur, BaseExceptionGroup):
            todo.extend(cur.exceptions)
    return out


def _classify_one(exc: BaseException) -> Failure | None:
    if isinstance(exc, trio.TooSlowError):
        return Failure.GENERIC_TIMEOUT_ERROR
    if isinstance(exc, trio.Cancelled | KeyboardInterrupt):
        return Failure.INTERRUPTED
    if isinstance(exc, trio.ClosedResourceError):
        return Failure.CONNECTION_ALREADY_CLOSED
    if isinstance(exc, dns.exception.Timeout | httpcore.TimeoutException):
        return Failure.GENERIC_TIMEOUT_ERROR
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return Failure.DNS_NXDOMAIN_ERROR
    if isinstance(exc, dns.resolver.NoAnswer):
        return Failure.DNS_NO_ANSWER
    if isinstance(exc, dns.exception.DNSException):
        return Failure.DNS_SERVER_MISBEHAVING
    if isinstance(exc, socket.gaierror):
        code = exc.errno
        if isinstance(code, int):
            return _GAI.get(code, Failure.DNS_SERVER_MISBEHAVING)
        return Failure.DNS_SERVER_MISBEHAVING
    if isinstance(exc, ssl.SSLCertVerificationError):
        vcode = exc.verify_code
        if vcode in _X509_HOSTNAME:
            return Failure.SSL_INVALID_HOSTNAME
        if vcode in _X509_UNKNOWN_AUTHORITY:
            return Failure.SSL_UNKNOWN_AUTHORITY
        return Failure.SSL_INVALID_CERTIFICATE
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return Failure.EOF_ERROR
    if isinstance(exc, ssl.SSLError):
        if getattr(exc, "reason", None) == _TLS_REASON_UNRECOGNIZED_NAME:
            return Failure.SSL_INVALID_HOSTNAME
        return Failure.SSL_FAILED_HANDSHAKE
    if isinstance(exc, OSError):
        if isinstance(exc.errno, int) and exc.errno in _ERRNO:
            return _ERRNO[exc.errno]
        if isinstance(exc, TimeoutError):
            return Failure.GENERIC_TIMEOUT_ERROR
    return None


def _evidence_text(chain: list[BaseException]) -> str:
    """The first non-empty message in the chain, prefixed with its type name."""
    for exc in chain:
        try:
            text = str(exc)
        except Exception:  # a broken __str__ must not make classify raise
            text = ""
        if text:
            return f"{type(exc).__name__}: {text}"
    return type(chain[0]).__name__


def classify(exc: BaseException, op: Operation) -> str:
    """The OONI failure string for ``exc`` raised while doing ``op``. Total: never raises."""
    try:
        chain = _chain(exc)
        for link in chain:
            failure = _classify_one(link)
            if failure is not None:
                return failure.value
        return UNKNOWN_FAILURE_PREFIX + scrub_ips(_evidence_text(chain))
    except Exception:  # pragma: no cover - defensive: classification must be total
        return UNKNOWN_FAILURE_PREFIX + type(exc).__name__


def classify_dns_rcode(rcode: int) -> str | None:
    """Failure for a DNS response code: 0 -> None (NOERROR)."""
    if rcode == 0:
        return None
    if rcode == 3:
        return Failure.DNS_NXDOMAIN_ERROR.value
    if rcode == 2:
        return Failure.DNS_SERVFAIL_ERROR.value
    if rcode == 5:
        return Failure.DNS_REFUSED_ERROR.value
    return Failure.DNS_SERVER_MISBEHAVING.value


def is_failure_string(text: str) -> bool:
    """True for a member of the closed set or an ``unknown_failure: ...`` string."""
    return text in _VALUES or text.startswith(UNKNOWN_FAILURE_PREFIX)


_VALUES: Final = frozenset(f.value for f in Failure)

# --- IP scrubbing ---------------------------------------------------------------------------

_BRACKETED = re.compile(r"\[([0-9A-Za-z:.%_-]+)\](?::\d{1,5})?")
_V6_CANDIDATE = re.compile(r"(?<![0-9A-Za-z:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.-]+)?")
_V4 = re.compile(r"(?<![0-9.])(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?(?![0-9]|\.\d)")


def _is_ip(text: str, *, version: int | None = None) -> bool:
    text = text.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or addr.version == version


def _sub_bracketed(m: re.Match[str]) -> str:
    return SCRUBBED if _is_ip(m.group(1)) else m.group(0)


def _sub_v6(m: re.Match[str]) -> str:
    token = m.group(0)
    # trailing punctuation may belong to the sentence ("... to fe80::1: refused")
    for core in (token, token.rstrip(":."), token.rstrip(".")):
        if core and _is_ip(core, version=6):
            return SCRUBBED + token[len(core) :]
    # "fe80::1:443" style: an address followed by a port
    core = token.rstrip(":.")
    head, sep, port = core.rpartition(":")
    if sep and port.isdigit() and _is_ip(head, version=6):
        return SCRUBBED + token[len(core) :]
    return token


def _sub_v4(m: re.Match[str]) -> str:
    return SCRUBBED if _is_ip(m.group(1), version=4) else m.group(0)


def scrub_ips(text: str) -> str:
    """Replace every IPv4/IPv6 address (with its ``:port`` if any) with ``[scrubbed]``."""
    text = _BRACKETED.sub(_sub_bracketed, text)
    text = _V6_CANDIDATE.sub(_sub_v6, text)
    return _V4.sub(_sub_v4, text)
