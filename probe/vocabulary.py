"""The probe's words, defined once: failures, operations, stages, outcomes, evidence levels.

Pure and stdlib-only, so every layer imports it: the stages and ``probe.failures`` (which
classifies exceptions into these words), the analysis (web verdict rules), the apps engine,
the batch and the control helper. A test (``tests/unit/test_vocabulary.py``) scans the AST of
``probe/`` and fails when a failure or outcome string is spelled anywhere but here.

Every member is a ``StrEnum``: it *is* its string (``Failure.EOF_ERROR == "eof_error"``, same
hash), so JSON, pydantic and the mypyc-compiled analysis see plain strings. Hot paths that test
membership use the ``frozenset`` groups below, built from ``.value`` (exact ``str``).

* :class:`Failure`: OONI's closed set of failure strings (df-007 and netxlite's errno table).
  One table: each row is ``NAME = ("failure_string", "ERRNO_NAME" | None)``; the errno column
  is the only errno -> failure mapping (as probe-cli generates ``errno.go`` from one table).
  Anything else is ``unknown_failure: <scrubbed text>`` (:data:`UNKNOWN_FAILURE_PREFIX`).
* :class:`THFailure`: the legacy strings OONI's test helper still answers with for DNS, TCP and
  HTTP (``dns_name_error``, ``connection_refused_error`` ...); TLS failures stay modern.
* :class:`Operation`: OONI's ``failed_operation`` strings (netxlite ``operations.go``).
* :class:`Stage`: the steps a test is made of, in order (dns, tcp, tls, http) plus the ones to
  come (quic, doh, packet). An outcome is ``stage/outcome`` (Censored Planet's ``outcome.md``):
  reaching a later stage means the earlier ones passed.
* :class:`Outcome`: every ``x_outcome`` a verdict engine may write, web, apps and the
  packet-level test alike. ONE word, ONE meaning across tests (docs/verdicts.md, docs/apps.md,
  docs/packet.md). In particular
  ``tcp/refused`` is a RST in reply to the SYN (``connection_refused``), ``tcp/reset`` a reset
  of a connection attempt that is not a refusal (``connection_reset`` while connecting).
* :func:`stage_outcome`: the outcome of "this failure at this stage", the table the apps engine
  uses per host; the web rules name the same outcomes for the same facts.
* :class:`Evidence`: how a verdict was reached (never an overloaded zero): ``local`` needs no
  control, ``control`` compared with a control that did (or did not) get through the same
  step, ``none`` is an honest "cannot tell".
* :class:`AppVerdict`: the app tests' ``x_app_verdict`` values.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

UNKNOWN_FAILURE_PREFIX: Final = "unknown_failure: "
#: the word alone: older probes (ooniprobe 2.x) wrote ``unknown_failure <text>``, no colon
UNKNOWN_FAILURE_WORD: Final = "unknown_failure"


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


#: every string of the closed set (exact ``str`` values)
FAILURE_STRINGS: Final = frozenset(f.value for f in Failure)


def is_failure_string(text: str) -> bool:
    """True for a member of the closed set or an ``unknown_failure: ...`` string."""
    return text in FAILURE_STRINGS or text.startswith(UNKNOWN_FAILURE_PREFIX)


def is_unknown_failure(text: str) -> bool:
    """True for ``unknown_failure: ...`` and the older probes' ``unknown_failure ...``: an
    error the probe did not recognise as a network failure."""
    return text.startswith(UNKNOWN_FAILURE_WORD)


def unknown_failure(evidence: str) -> str:
    """``unknown_failure: <evidence>``: the caller scrubs the evidence of addresses."""
    return UNKNOWN_FAILURE_PREFIX + evidence


class THFailure(StrEnum):
    """The test helper's legacy failure strings (ooni-format.md 10.2), DNS/TCP/HTTP only."""

    DNS_NAME_ERROR = "dns_name_error"
    DNS_SERVER_FAILURE = "dns_server_failure"
    DNS_LOOKUP_ERROR = "dns_lookup_error"
    CONNECTION_REFUSED_ERROR = "connection_refused_error"
    CONNECT_ERROR = "connect_error"
    UNKNOWN_ERROR = "unknown_error"


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


class Stage(StrEnum):
    """The steps of a test, in the order a connection goes through them, and those to come."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    QUIC = "quic"
    DOH = "doh"
    PACKET = "packet"


#: the web and app tests' stages, in order (a later stage implies the earlier ones passed)
CONNECTION_STAGES: Final = (Stage.DNS.value, Stage.TCP.value, Stage.TLS.value, Stage.HTTP.value)

#: the stage an operation belongs to (what ``stage/outcome`` calls the failing step)
OPERATION_STAGE: Final[dict[str, str]] = {
    Operation.RESOLVE.value: Stage.DNS.value,
    Operation.DNS_ROUND_TRIP.value: Stage.DNS.value,
    Operation.CONNECT.value: Stage.TCP.value,
    Operation.TLS_HANDSHAKE.value: Stage.TLS.value,
    Operation.QUIC_HANDSHAKE.value: Stage.QUIC.value,
    Operation.HTTP_ROUND_TRIP.value: Stage.HTTP.value,
    Operation.READ.value: Stage.HTTP.value,
    Operation.WRITE.value: Stage.HTTP.value,
}


class Evidence(StrEnum):
    """How a rule reaches its verdict (oonipipeline's evidence levels, without the zero)."""

    LOCAL = "local"
    CONTROL = "control"
    NONE = "none"


class Outcome(StrEnum):
    """Every ``x_outcome`` value, ``stage/outcome``; meanings in docs/verdicts.md and apps.md."""

    OK = "ok"
    # --- dns ----------------------------------------------------------------------------
    DNS_NXDOMAIN = "dns/nxdomain"
    DNS_FAILURE = "dns/failure"
    DNS_SERVFAIL = "dns/servfail"
    DNS_REFUSED = "dns/refused"
    DNS_NO_ANSWER = "dns/no-answer"
    DNS_TIMEOUT = "dns/timeout"
    DNS_BOGON = "dns/bogon"
    DNS_BLOCKPAGE_IP = "dns/blockpage-ip"
    DNS_INJECTED = "dns/injected"
    DNS_UNEXPECTED_ADDRESS = "dns/unexpected-address"
    DNS_INCONSISTENT = "dns/inconsistent"
    # --- tcp ----------------------------------------------------------------------------
    TCP_TIMEOUT = "tcp/timeout"
    TCP_REFUSED = "tcp/refused"
    TCP_RESET = "tcp/reset"
    TCP_ICMP_UNREACHABLE = "tcp/icmp-unreachable"
    TCP_FAILURE = "tcp/failure"
    TCP_IP_BLOCKED = "tcp/ip-blocked"
    TCP_NOT_ATTEMPTED = "tcp/not-attempted"
    # --- tls ----------------------------------------------------------------------------
    TLS_RESET = "tls/reset-after-clienthello"
    TLS_TIMEOUT = "tls/timeout-after-clienthello"
    TLS_EOF = "tls/eof-after-clienthello"
    TLS_MITM_CERTIFICATE = "tls/mitm-certificate"
    TLS_UNKNOWN_AUTHORITY = "tls/unknown-authority"
    TLS_INVALID_HOSTNAME = "tls/invalid-hostname"
    TLS_INVALID_CERTIFICATE = "tls/invalid-certificate"
    TLS_FAILED_HANDSHAKE = "tls/failed-handshake"
    TLS_FAILURE = "tls/failure"
    # --- http ---------------------------------------------------------------------------
    HTTP_RESET = "http/reset-after-request"
    HTTP_EOF = "http/eof-after-request"
    HTTP_TIMEOUT = "http/timeout-after-request"
    HTTP_BODY_TIMEOUT = "http/body-timeout"
    HTTP_INVALID_REDIRECT = "http/invalid-redirect"
    HTTP_FAILURE = "http/failure"
    HTTP_THROTTLED = "http/throttled"
    HTTP_SLOW_LINK = "http/slow-link"
    HTTP_BLOCKPAGE = "http/blockpage"
    HTTP_REDIRECT_TO_BLOCKPAGE = "http/redirect-to-blockpage"
    HTTP_DIFF = "http/diff"
    HTTP_BENIGN_PAGE = "http/benign-page"
    HTTP_UNEXPECTED_STATUS = "http/unexpected-status"
    # --- packet (censor_trace: where the censor sits, docs/packet.md) ----------------------
    PACKET_CENSOR_LOCATED = "packet/censor-located"
    PACKET_SERVER_REACTION = "packet/server-reaction"
    PACKET_NO_CENSOR = "packet/no-censor"
    PACKET_NO_CONNECTION = "packet/no-connection"
    PACKET_INCOMPLETE = "packet/incomplete"
    PACKET_NOT_TRACED = "packet/not-traced"
    # --- not censorship, or cannot tell -------------------------------------------------
    DOWN_EVERYWHERE = "down/everywhere"
    DOWN_SERVER_ERROR = "down/server-error"
    UNKNOWN_CONTROL_UNAVAILABLE = "unknown/control-unavailable"
    UNKNOWN_PROBE_NO_IPV6 = "unknown/probe-no-ipv6"
    UNKNOWN_PROBE_FAILURE = "unknown/probe-failure"
    UNKNOWN_UNUSABLE_INPUT = "unknown/unusable-input"
    UNKNOWN_UNDETERMINED = "unknown/undetermined"
    UNKNOWN_ANALYSIS_ERROR = "unknown/analysis-error"
    UNKNOWN_UNKNOWN = "unknown/unknown"


def outcome_stage(outcome: str) -> str:
    """The stage part of ``stage/outcome`` ("" for ``ok``)."""
    stage, sep, _ = outcome.partition("/")
    return stage if sep else ""


# --- failure groups (exact str values: hot-path membership tests) ---------------------------

RESET: Final = frozenset(
    {Failure.CONNECTION_RESET.value, Failure.CONNECTION_ABORTED.value, Failure.NETWORK_RESET.value}
)
TIMEOUT: Final = frozenset({Failure.GENERIC_TIMEOUT_ERROR.value, Failure.TIMED_OUT.value})
EOF: Final = frozenset({Failure.EOF_ERROR.value})
REFUSED: Final = frozenset({Failure.CONNECTION_REFUSED.value})
UNREACHABLE: Final = frozenset({Failure.HOST_UNREACHABLE.value, Failure.NETWORK_UNREACHABLE.value})
CERTIFICATE: Final = frozenset(
    {
        Failure.SSL_INVALID_HOSTNAME.value,
        Failure.SSL_UNKNOWN_AUTHORITY.value,
        Failure.SSL_INVALID_CERTIFICATE.value,
    }
)
BAD_REDIRECT: Final = frozenset(
    {Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST.value, Failure.HTTP_UNEXPECTED_REDIRECT_URL.value}
)
NXDOMAIN: Final = frozenset(
    {Failure.DNS_NXDOMAIN_ERROR.value, Failure.ANDROID_DNS_CACHE_NO_DATA.value}
)
#: the control's NXDOMAIN: the test helper's legacy string (THFailure) and the modern one
CONTROL_NXDOMAIN: Final = frozenset(
    {THFailure.DNS_NAME_ERROR.value, Failure.DNS_NXDOMAIN_ERROR.value}
)
#: failures that are the probe's own doing, not the network's: LTE cancels the round trips it
#: no longer needs once one endpoint has answered (a real 2023 measurement has 28 of them
#: around its one 200, all newer: tests/corpus), our probe records ``interrupted``
PROBE_CANCELLED: Final = frozenset(
    {unknown_failure("http_request_canceled"), Failure.INTERRUPTED.value}
)
#: failures after which the SNI / Host diagnostics are worth one more connection
DIAGNOSABLE: Final = RESET | TIMEOUT | EOF | REFUSED

#: the stage a failure string names by itself (the others happen at any stage)
FAILURE_STAGE: Final[dict[str, str]] = {
    **{
        f.value: Stage.DNS.value
        for f in (
            Failure.DNS_NXDOMAIN_ERROR,
            Failure.DNS_NO_ANSWER,
            Failure.DNS_REFUSED_ERROR,
            Failure.DNS_SERVFAIL_ERROR,
            Failure.DNS_SERVER_MISBEHAVING,
            Failure.DNS_REPLY_WITH_WRONG_QUERY_ID,
            Failure.DNS_BOGON_ERROR,
            Failure.DNS_TEMPORARY_FAILURE,
            Failure.DNS_NON_RECOVERABLE_FAILURE,
            Failure.ANDROID_DNS_CACHE_NO_DATA,
        )
    },
    **{
        f.value: Stage.TLS.value
        for f in (
            Failure.SSL_INVALID_HOSTNAME,
            Failure.SSL_UNKNOWN_AUTHORITY,
            Failure.SSL_INVALID_CERTIFICATE,
            Failure.SSL_FAILED_HANDSHAKE,
        )
    },
    **{
        f.value: Stage.HTTP.value
        for f in (
            Failure.HTTP_REQUEST_FAILED,
            Failure.HTTP_UNEXPECTED_STATUS_CODE,
            Failure.HTTP_UNEXPECTED_REDIRECT_URL,
            Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST,
        )
    },
}

#: the apps engine's HTTP stage value when the host lists healthy statuses and got another
UNEXPECTED_STATUS: Final = "unexpected_status"
#: the apps engine's TCP stage value when no address could be tried
NOT_ATTEMPTED: Final = "not_attempted"
#: the apps engine's DNS stage value when the answers fall outside the expected networks
INCONSISTENT: Final = "inconsistent"

# --- "this failure at this stage" -------------------------------------------------------------

_BY_STAGE: Final[dict[str, tuple[tuple[frozenset[str], Outcome], ...]]] = {
    Stage.DNS.value: (
        (NXDOMAIN, Outcome.DNS_NXDOMAIN),
        (frozenset({Failure.DNS_SERVFAIL_ERROR.value}), Outcome.DNS_SERVFAIL),
        (frozenset({Failure.DNS_REFUSED_ERROR.value}), Outcome.DNS_REFUSED),
        (frozenset({Failure.DNS_NO_ANSWER.value}), Outcome.DNS_NO_ANSWER),
        (TIMEOUT, Outcome.DNS_TIMEOUT),
        (frozenset({Failure.DNS_BOGON_ERROR.value}), Outcome.DNS_BOGON),
        (frozenset({INCONSISTENT}), Outcome.DNS_INCONSISTENT),
    ),
    Stage.TCP.value: (
        (REFUSED, Outcome.TCP_REFUSED),
        (RESET, Outcome.TCP_RESET),
        (TIMEOUT, Outcome.TCP_TIMEOUT),
        (UNREACHABLE, Outcome.TCP_ICMP_UNREACHABLE),
        (frozenset({NOT_ATTEMPTED}), Outcome.TCP_NOT_ATTEMPTED),
    ),
    Stage.TLS.value: (
        (RESET, Outcome.TLS_RESET),
        (TIMEOUT, Outcome.TLS_TIMEOUT),
        (EOF, Outcome.TLS_EOF),
        (frozenset({Failure.SSL_UNKNOWN_AUTHORITY.value}), Outcome.TLS_UNKNOWN_AUTHORITY),
        (frozenset({Failure.SSL_INVALID_HOSTNAME.value}), Outcome.TLS_INVALID_HOSTNAME),
        (frozenset({Failure.SSL_INVALID_CERTIFICATE.value}), Outcome.TLS_INVALID_CERTIFICATE),
        (frozenset({Failure.SSL_FAILED_HANDSHAKE.value}), Outcome.TLS_FAILED_HANDSHAKE),
    ),
    Stage.HTTP.value: (
        (RESET, Outcome.HTTP_RESET),
        (EOF, Outcome.HTTP_EOF),
        (TIMEOUT, Outcome.HTTP_TIMEOUT),
        (frozenset({UNEXPECTED_STATUS}), Outcome.HTTP_UNEXPECTED_STATUS),
    ),
}
_OTHER: Final[dict[str, Outcome]] = {
    Stage.DNS.value: Outcome.DNS_FAILURE,
    Stage.TCP.value: Outcome.TCP_FAILURE,
    Stage.TLS.value: Outcome.TLS_FAILURE,
    Stage.HTTP.value: Outcome.HTTP_FAILURE,
}


def stage_outcome(stage: str, failure: str) -> Outcome:
    """The outcome of ``failure`` at ``stage`` (one of :data:`CONNECTION_STAGES`); anything
    without a word of its own is ``<stage>/failure``."""
    for failures, outcome in _BY_STAGE.get(stage, ()):
        if failure in failures:
            return outcome
    other = _OTHER.get(stage)
    if other is None:
        raise ValueError(f"not a connection stage: {stage!r}")
    return other


class AppVerdict(StrEnum):
    """``x_app_verdict`` of the app tests."""

    ACCESSIBLE = "accessible"
    BLOCKED = "blocked"
    PARTIALLY_BLOCKED = "partially-blocked"
    DOWN = "down"
    UNDETERMINED = "undetermined"
