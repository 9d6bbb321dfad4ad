"""The one place that classifies errors into OONI failure strings, bound to their operation.

The words themselves (:class:`~probe.vocabulary.Failure`, :class:`~probe.vocabulary.Operation`)
live in :mod:`probe.vocabulary`, which is pure; this module may import trio, httpcore and
dnspython because it looks at their exception types. :func:`classify` returns an
:class:`OpFailure`, as netxlite's ``ErrWrapper`` carries its failure string and the operation
that failed: ``str(f)`` / ``f.value`` / ``f.failure`` is the OONI string, ``f.operation`` the
operation. :func:`failed` binds a failure the caller decided itself (a deadline of ours that
fired, an empty answer) the same way.

:func:`classify` is total (it never raises) and never matches message text. It walks the
exception chain (``__cause__`` first, then ``__context__``), because trio re-raises ``OSError`` and
``ssl.SSLError`` as ``trio.BrokenResourceError`` with the original as the cause. For each link,
specific classifiers run before generic ones, and the operation chooses the specific ones (as
netxlite runs its TLS classifier only on handshake errors):

====================================  =======================================================
``trio.TooSlowError``, ``TimeoutError`` without errno, ``dns.exception.Timeout``,
httpcore timeouts                     ``generic_timeout_error``
``trio.Cancelled``, ``KeyboardInterrupt``  ``interrupted``
``socket.gaierror`` (by EAI code)     ``dns_nxdomain_error`` / ``dns_no_answer`` /
                                      ``dns_temporary_failure`` / ``dns_non_recoverable_failure``
                                      / ``dns_server_misbehaving``
``ssl.SSLCertVerificationError``      (only a handshake raises it, whatever the caller calls
                                      the operation) by X509 verify code: hostname mismatch ->
                                      ``ssl_invalid_hostname``; unknown issuer / self-signed ->
                                      ``ssl_unknown_authority``; anything else ->
                                      ``ssl_invalid_certificate``
``ssl.SSLEOFError``, ``SSLZeroReturnError``  ``eof_error`` (any operation)
other ``ssl.SSLError``                only during ``tls_handshake`` / ``quic_handshake``:
                                      ``ssl_failed_handshake`` (TLS alert 112,
                                      ``unrecognized_name``, -> ``ssl_invalid_hostname``);
                                      during a read or an HTTP round trip on an established
                                      session it is not a handshake failure: ``unknown_failure``
``OSError`` with a known errno        the errno column of :class:`~probe.vocabulary.Failure`
dnspython exceptions                  NXDOMAIN / NoAnswer / everything else
                                      ``dns_server_misbehaving``
``trio.ClosedResourceError``          ``connection_already_closed``
====================================  =======================================================

Anything that cannot be classified becomes ``unknown_failure: <text>`` with every IP address (and
``ip:port``) scrubbed by :func:`scrub_ips`, so the evidence survives without leaking addresses.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Final

import dns.exception
import dns.resolver
import httpcore
import trio

from probe.netaddr import parse_ip
from probe.vocabulary import (
    FAILURE_STRINGS,
    UNKNOWN_FAILURE_PREFIX,
    Failure,
    Operation,
    is_failure_string,
    unknown_failure,
)

__all__ = [
    "FAILURE_STRINGS",
    "UNKNOWN_FAILURE_PREFIX",
    "Failure",
    "OpFailure",
    "Operation",
    "classify",
    "classify_dns_rcode",
    "failed",
    "is_failure_string",
    "scrub_ips",
]

SCRUBBED: Final = "[scrubbed]"


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


_HANDSHAKES: Final = frozenset({Operation.TLS_HANDSHAKE, Operation.QUIC_HANDSHAKE})


@dataclass(frozen=True, slots=True)
class OpFailure:
    """A failure string bound to the operation that failed (netxlite's wrapped error).

    ``failure`` is a member of the closed set or an ``unknown_failure: ...`` string."""

    failure: str
    operation: Operation

    @property
    def value(self) -> str:
        return self.failure

    def __str__(self) -> str:
        return self.failure


def failed(failure: Failure | str, op: Operation) -> OpFailure:
    """Bind a failure the caller decided (a deadline of ours, an empty answer) to ``op``."""
    return OpFailure(failure=str(failure), operation=op)


def _classify_one(exc: BaseException, op: Operation) -> Failure | None:
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
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return Failure.EOF_ERROR
    if isinstance(exc, ssl.SSLCertVerificationError):  # only ever raised by a handshake
        return _classify_tls(exc)
    if isinstance(exc, ssl.SSLError):
        return _classify_tls(exc) if op in _HANDSHAKES else None
    if isinstance(exc, OSError):
        if isinstance(exc.errno, int) and exc.errno in _ERRNO:
            return _ERRNO[exc.errno]
        if isinstance(exc, TimeoutError):
            return Failure.GENERIC_TIMEOUT_ERROR
    return None


def _classify_tls(exc: ssl.SSLError) -> Failure:
    """A TLS error raised by a handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        vcode = exc.verify_code
        if vcode in _X509_HOSTNAME:
            return Failure.SSL_INVALID_HOSTNAME
        if vcode in _X509_UNKNOWN_AUTHORITY:
            return Failure.SSL_UNKNOWN_AUTHORITY
        return Failure.SSL_INVALID_CERTIFICATE
    if getattr(exc, "reason", None) == _TLS_REASON_UNRECOGNIZED_NAME:
        return Failure.SSL_INVALID_HOSTNAME
    return Failure.SSL_FAILED_HANDSHAKE


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


def classify(exc: BaseException, op: Operation) -> OpFailure:
    """The OONI failure for ``exc`` raised while doing ``op``, bound to ``op``. Total."""
    try:
        chain = _chain(exc)
        for link in chain:
            failure = _classify_one(link, op)
            if failure is not None:
                return OpFailure(failure.value, op)
        return OpFailure(unknown_failure(scrub_ips(_evidence_text(chain))), op)
    except Exception:  # pragma: no cover - defensive: classification must be total
        return OpFailure(unknown_failure(type(exc).__name__), op)


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


# --- IP scrubbing ---------------------------------------------------------------------------

_BRACKETED = re.compile(r"\[([0-9A-Za-z:.%_-]+)\](?::\d{1,5})?")
_V6_CANDIDATE = re.compile(r"(?<![0-9A-Za-z:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.-]+)?")
_V4 = re.compile(r"(?<![0-9.])(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?(?![0-9]|\.\d)")


def _is_ip(text: str, *, version: int | None = None) -> bool:
    addr = parse_ip(text)
    return addr is not None and (version is None or addr.version == version)


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
