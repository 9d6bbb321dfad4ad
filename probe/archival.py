"""Pydantic v2 models of the OONI measurement format (df-000 base, df-001 httpt, df-002 dnst,
df-005 tcpconnect, df-006 tlshandshake, df-008 netevents), the Web Connectivity test keys and
test-helper messages (ts-017), and the instant-messaging test keys (ts-018/019/020/029).

Design:

* **Extra keys survive.** Every model has ``extra="allow"``: ``x_`` keys and the keys of other
  probe versions load and dump back unchanged.
* **Strict types.** Models validate in pydantic's strict mode: no silent ``"80"`` -> ``80`` or
  ``True`` -> ``1``. Types are loose only where real data is (``failure: false`` in MK-era
  ``tcp_connect``, ``retries`` as an int, null bodies), and those spots are named below.
* **Numbers keep their JSON type.** Times and other float-valued keys are :data:`Number`
  (``int | float``): Go writes a float64 zero as ``0``, and an int must not come back as ``0.0``.
* **Round trip.** ``Measurement.model_validate(d).model_dump(mode="json", exclude_unset=True)``
  equals ``d`` for real measurements. Our writer instead dumps *everything*
  (:func:`measurement_to_json`): producers emit every documented key, ``null`` rather than absent.
* ``test_keys`` are typed per ``test_name`` (:data:`TEST_KEYS_MODELS`); other tests keep a dict.

Events are built directly in this archival shape by :mod:`probe.trace` and :mod:`probe.stages`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

#: a JSON number that keeps its JSON type (``0`` stays an int, ``0.5`` a float)
Number = int | float

#: ``null`` on success, else an OONI failure string (df-007)
Failure = str | None

#: MK-era data (and oonidata) allow ``false`` for "no failure" in ``tcp_connect[].status``
LegacyFailure = str | Literal[False] | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)


class BinaryData(_Model):
    """Bytes that are not valid UTF-8: ``{"format": "base64", "data": "<b64>"}``."""

    format: Literal["base64"] = "base64"
    data: str

    @classmethod
    def of(cls, raw: bytes) -> BinaryData:
        return cls(data=base64.b64encode(raw).decode("ascii"))

    def to_bytes(self) -> bytes:
        try:
            return base64.b64decode(self.data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"invalid base64 in BinaryData: {exc}") from exc


#: a plain string when the bytes are valid UTF-8, BinaryData otherwise
MaybeBinary = str | BinaryData


def maybe_binary(raw: bytes) -> MaybeBinary:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BinaryData.of(raw)


def maybe_binary_bytes(value: MaybeBinary | None) -> bytes:
    """The raw bytes of a MaybeBinaryData value (``b""`` for null)."""
    if value is None:
        return b""
    if isinstance(value, BinaryData):
        return value.to_bytes()
    return value.encode("utf-8")


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


#: one ``[name, value]`` entry of ``headers_list`` (a JSON array, a tuple in Python)
HeaderPair = Annotated[tuple[str, MaybeBinary], BeforeValidator(_list_to_tuple)]


# --- DNS (df-002) -----------------------------------------------------------------------------


class DNSAnswer(_Model):
    answer_type: str
    ipv4: str | None = None
    ipv6: str | None = None
    hostname: str | None = None
    ttl: int | None = None
    asn: int = 0
    as_org_name: str = ""


class DNSQuery(_Model):
    answers: list[DNSAnswer] | None = None
    engine: str = "unknown"  # absent in MK-era data
    failure: Failure = None
    hostname: str
    query_type: str
    resolver_address: str = ""
    resolver_hostname: None = None
    resolver_port: None = None
    t0: Number = 0.0
    t: Number = 0.0
    tags: list[str] | None = Field(default_factory=list)
    transaction_id: int = 0
    raw_response: str | None = None
    rcode: int | None = None
    getaddrinfo_error: int | None = None


# --- TCP (df-005) -----------------------------------------------------------------------------


class TCPConnectStatus(_Model):
    success: bool
    failure: LegacyFailure = None
    blocked: bool | None = None


class TCPConnect(_Model):
    ip: str
    port: int
    status: TCPConnectStatus
    t0: Number = 0.0
    t: Number = 0.0
    tags: list[str] | None = Field(default_factory=list)
    transaction_id: int = 0


# --- TLS (df-006) -----------------------------------------------------------------------------


class TLSHandshake(_Model):
    network: str = "tcp"
    address: str = ""  # absent in some 2021-2022 data
    server_name: str | None = None
    cipher_suite: str = ""
    tls_version: str = ""
    negotiated_protocol: str = ""
    no_tls_verify: bool = False
    peer_certificates: list[BinaryData] | None = None
    failure: Failure = None
    t0: Number = 0.0
    t: Number = 0.0
    tags: list[str] | None = Field(default_factory=list)
    transaction_id: int = 0


# --- HTTP (df-001) ----------------------------------------------------------------------------


class HTTPTor(_Model):
    exit_ip: str | None = None
    exit_name: str | None = None
    is_tor: bool = False


class HTTPRequest(_Model):
    url: str
    method: str = "GET"
    headers: dict[str, MaybeBinary] = Field(default_factory=dict)
    headers_list: list[HeaderPair] = Field(default_factory=list)
    body: MaybeBinary | None = ""  # null in some legacy data
    body_is_truncated: bool = False
    tor: HTTPTor = Field(default_factory=HTTPTor)
    x_transport: str = "tcp"


class HTTPResponse(_Model):
    code: int = 0
    headers: dict[str, MaybeBinary] | None = None
    headers_list: list[HeaderPair] | None = None
    body: MaybeBinary | None = ""
    body_is_truncated: bool = False


class HTTPTransaction(_Model):
    network: str = "tcp"
    address: str = ""
    alpn: str = ""
    failure: Failure = None
    request: HTTPRequest
    response: HTTPResponse | None = Field(default_factory=HTTPResponse)  # null in MK data
    t0: Number = 0.0
    t: Number = 0.0
    tags: list[str] | None = Field(default_factory=list)
    transaction_id: int = 0


# --- network events (df-008) ------------------------------------------------------------------


class NetworkEvent(_Model):
    address: str | None = None
    failure: Failure = None
    num_bytes: int | None = None
    operation: str
    proto: str | None = None
    t0: Number = 0.0
    t: Number = 0.0
    tags: list[str] | None = Field(default_factory=list)
    transaction_id: int = 0


# --- Web Connectivity control (test helper) messages, ts-017 ----------------------------------


class ControlDNS(_Model):
    failure: Failure = None
    addrs: list[str] | None = Field(default_factory=list)


class ControlTCPConnect(_Model):
    status: bool
    failure: Failure = None


class ControlTLSHandshake(_Model):
    server_name: str = ""
    status: bool
    failure: Failure = None


class ControlHTTPRequest(_Model):
    body_length: int = -1
    discovered_h3_endpoint: str = ""
    failure: Failure = None
    title: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    status_code: int = -1


class ControlIPInfo(_Model):
    asn: int = 0
    flags: int = 0


class ControlResponse(_Model):
    tcp_connect: dict[str, ControlTCPConnect] = Field(default_factory=dict)
    tls_handshake: dict[str, ControlTLSHandshake] | None = None
    quic_handshake: dict[str, Any] | None = None
    http_request: ControlHTTPRequest = Field(default_factory=ControlHTTPRequest)
    http3_request: dict[str, Any] | None = None
    dns: ControlDNS = Field(default_factory=ControlDNS)
    ip_info: dict[str, ControlIPInfo] | None = None


class ControlRequest(_Model):
    http_request: str
    http_request_headers: dict[str, list[str]] = Field(default_factory=dict)
    tcp_connect: list[str] | None = Field(default_factory=list)
    x_quic_enabled: bool = False


# --- test keys --------------------------------------------------------------------------------


class WebConnectivityTestKeys(_Model):
    agent: str = "redirect"
    client_resolver: str | None = ""
    retries: int | None = None  # always null today; MK-era data has an int
    socksproxy: None = None
    queries: list[DNSQuery] | None = Field(default_factory=list)
    tcp_connect: list[TCPConnect] | None = Field(default_factory=list)
    tls_handshakes: list[TLSHandshake] | None = Field(default_factory=list)
    requests: list[HTTPTransaction] | None = Field(default_factory=list)
    network_events: list[NetworkEvent] | None = Field(default_factory=list)
    x_dns_duplicate_responses: list[DNSQuery] | None = Field(default_factory=list)
    x_control_request: ControlRequest | None = None
    #: the TH answer; a dict when it does not fit ControlResponse (old TH versions, {} on failure)
    control: ControlResponse | dict[str, Any] | None = None
    control_failure: Failure = None
    dns_experiment_failure: Failure = None
    dns_consistency: str | None = None
    http_experiment_failure: Failure = None
    body_length_match: bool | None = None
    body_proportion: Number = 0
    headers_match: bool | None = None
    status_code_match: bool | None = None
    title_match: bool | None = None
    blocking: str | Literal[False] | None = None
    accessible: bool | None = None
    #: endpoints we refused to connect to (bogons for a non-bogon host), as "ip:port"
    x_skipped_endpoints: list[str] | None = Field(default_factory=list)


class URLGetterTestKeys(_Model):
    """The urlgetter-style keys shared by the instant-messaging tests (section 11)."""

    agent: str = "redirect"
    failed_operation: str | None = None
    failure: Failure = None
    socksproxy: None = None
    queries: list[DNSQuery] | None = Field(default_factory=list)
    tcp_connect: list[TCPConnect] | None = Field(default_factory=list)
    tls_handshakes: list[TLSHandshake] | None = Field(default_factory=list)
    requests: list[HTTPTransaction] | None = Field(default_factory=list)
    network_events: list[NetworkEvent] | None = Field(default_factory=list)


class WhatsappTestKeys(URLGetterTestKeys):
    registration_server_failure: Failure = None
    registration_server_status: str = "ok"
    whatsapp_endpoints_blocked: list[str] | None = Field(default_factory=list)
    whatsapp_endpoints_dns_inconsistent: list[str] | None = Field(default_factory=list)
    whatsapp_endpoints_status: str = "ok"
    whatsapp_web_failure: Failure = None
    whatsapp_web_status: str = "ok"


class TelegramTestKeys(URLGetterTestKeys):
    telegram_http_blocking: bool = True
    telegram_tcp_blocking: bool = True
    telegram_web_failure: Failure = None
    telegram_web_status: str | None = None


class SignalTestKeys(URLGetterTestKeys):
    signal_backend_failure: Failure = None
    signal_backend_status: str = "ok"


class FacebookMessengerTestKeys(_Model):
    """Per-service ``facebook_<name>_dns_consistent`` / ``_reachable`` keys are extra keys
    (``<name>`` in stun, b_api, b_graph, edge, external_cdn, scontent_cdn, star)."""

    facebook_dns_blocking: bool | None = False
    facebook_tcp_blocking: bool | None = False
    socksproxy: None = None
    queries: list[DNSQuery] | None = Field(default_factory=list)
    tcp_connect: list[TCPConnect] | None = Field(default_factory=list)


TestKeys = (
    WebConnectivityTestKeys
    | WhatsappTestKeys
    | TelegramTestKeys
    | SignalTestKeys
    | FacebookMessengerTestKeys
)

#: test_name -> typed test keys; other tests keep their test_keys as a plain dict
TEST_KEYS_MODELS: dict[str, type[_Model]] = {
    "web_connectivity": WebConnectivityTestKeys,
    "whatsapp": WhatsappTestKeys,
    "telegram": TelegramTestKeys,
    "signal": SignalTestKeys,
    "facebook_messenger": FacebookMessengerTestKeys,
}


# --- the measurement (df-000) -----------------------------------------------------------------


class Measurement(_Model):
    """The OONI base data format (df-000). ``test_keys`` is typed per :data:`TEST_KEYS_MODELS`."""

    annotations: dict[str, Any] | None = Field(default_factory=dict)
    data_format_version: str = "0.2.0"
    extensions: dict[str, int] | None = Field(default_factory=dict)
    id: str | None = None
    input: str | None = None
    measurement_start_time: str
    test_start_time: str
    probe_asn: str = "AS0"
    probe_cc: str = "ZZ"
    probe_ip: str | None = "127.0.0.1"
    probe_network_name: str | None = ""
    report_id: str = ""
    resolver_asn: str | None = "AS0"
    resolver_ip: str | None = ""
    resolver_network_name: str | None = ""
    software_name: str
    software_version: str
    test_helpers: dict[str, Any] | None = Field(default_factory=dict)
    test_name: str
    test_keys: TestKeys | dict[str, Any] | None = None
    test_runtime: Number = 0.0
    test_version: str

    @field_validator("test_keys", mode="wrap")
    @classmethod
    def _typed_test_keys(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """Parse ``test_keys`` with the model of this ``test_name``; other tests keep a dict.

        (``test_name`` is declared before ``test_keys`` so that it is validated first.) A dict
        is never handed to the union blindly: a model that accepts any keys would swallow it.
        """
        if isinstance(value, dict):
            model = TEST_KEYS_MODELS.get(info.data.get("test_name", ""))
            return value if model is None else model.model_validate(value)
        return handler(value)


WEB_CONNECTIVITY_EXTENSIONS = {
    "dnst": 0,
    "httpt": 0,
    "netevents": 0,
    "tcpconnect": 0,
    "tlshandshake": 0,
}


def measurement_to_json(msmt: Measurement) -> dict[str, Any]:
    """The JSON-ready dict our writer emits: every documented key, ``null`` rather than absent."""
    return msmt.model_dump(mode="json")


def load_measurement(data: dict[str, Any]) -> Measurement:
    """Validate one measurement (ours or OONI's) already parsed from JSON."""
    return Measurement.model_validate(data)
