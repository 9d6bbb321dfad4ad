"""Pydantic v2 models of the OONI measurement format (df-000 base, df-001 httpt, df-002 dnst,
df-005 tcpconnect, df-006 tlshandshake, df-008 netevents) and the Web Connectivity test keys.

Every model allows extra keys (``x_`` keys and fields of other probe versions survive a
load/dump round trip). Producers emit every documented key, with ``null`` rather than omitting.
Events are built directly in this archival shape by :mod:`probe.trace`.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class BinaryData(_Model):
    format: Literal["base64"] = "base64"
    data: str

    @classmethod
    def of(cls, raw: bytes) -> BinaryData:
        return cls(data=base64.b64encode(raw).decode("ascii"))


#: a plain string when the bytes are valid UTF-8, BinaryData otherwise
MaybeBinary = str | BinaryData


def maybe_binary(raw: bytes) -> MaybeBinary:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BinaryData.of(raw)


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
    engine: str
    failure: str | None = None
    hostname: str
    query_type: str
    resolver_address: str = ""
    resolver_hostname: None = None
    resolver_port: None = None
    t0: float = 0.0
    t: float = 0.0
    tags: list[str] = Field(default_factory=list)
    transaction_id: int = 0
    raw_response: str | None = None
    rcode: int | None = None
    getaddrinfo_error: int | None = None


class TCPConnectStatus(_Model):
    success: bool
    failure: str | None = None
    blocked: bool | None = None


class TCPConnect(_Model):
    ip: str
    port: int
    status: TCPConnectStatus
    t0: float = 0.0
    t: float = 0.0
    tags: list[str] = Field(default_factory=list)
    transaction_id: int = 0


class TLSHandshake(_Model):
    network: str = "tcp"
    address: str
    server_name: str | None = None
    cipher_suite: str = ""
    tls_version: str = ""
    negotiated_protocol: str = ""
    no_tls_verify: bool = False
    peer_certificates: list[BinaryData] | None = None
    failure: str | None = None
    t0: float = 0.0
    t: float = 0.0
    tags: list[str] = Field(default_factory=list)
    transaction_id: int = 0


class HTTPTor(_Model):
    exit_ip: str | None = None
    exit_name: str | None = None
    is_tor: bool = False


class HTTPRequest(_Model):
    url: str
    method: str = "GET"
    headers: dict[str, MaybeBinary] = Field(default_factory=dict)
    headers_list: list[tuple[str, MaybeBinary]] = Field(default_factory=list)
    body: MaybeBinary = ""
    body_is_truncated: bool = False
    tor: HTTPTor = Field(default_factory=HTTPTor)
    x_transport: str = "tcp"


class HTTPResponse(_Model):
    code: int = 0
    headers: dict[str, MaybeBinary] | None = None
    headers_list: list[tuple[str, MaybeBinary]] | None = None
    body: MaybeBinary | None = ""
    body_is_truncated: bool = False


class HTTPTransaction(_Model):
    network: str = "tcp"
    address: str = ""
    alpn: str = ""
    failure: str | None = None
    request: HTTPRequest
    response: HTTPResponse = Field(default_factory=HTTPResponse)
    t0: float = 0.0
    t: float = 0.0
    tags: list[str] = Field(default_factory=list)
    transaction_id: int = 0


class NetworkEvent(_Model):
    address: str | None = None
    failure: str | None = None
    num_bytes: int | None = None
    operation: str
    proto: str | None = None
    t0: float = 0.0
    t: float = 0.0
    tags: list[str] = Field(default_factory=list)
    transaction_id: int = 0


# --- Web Connectivity control (test helper) response, df / ts-017 -----------------------------


class ControlDNS(_Model):
    failure: str | None = None
    addrs: list[str] = Field(default_factory=list)


class ControlTCPConnect(_Model):
    status: bool
    failure: str | None = None


class ControlTLSHandshake(_Model):
    server_name: str = ""
    status: bool
    failure: str | None = None


class ControlHTTPRequest(_Model):
    body_length: int = -1
    discovered_h3_endpoint: str = ""
    failure: str | None = None
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
    tcp_connect: list[str] = Field(default_factory=list)
    x_quic_enabled: bool = False


class WebConnectivityTestKeys(_Model):
    agent: str = "redirect"
    client_resolver: str | None = ""
    retries: None = None
    socksproxy: None = None
    queries: list[DNSQuery] | None = Field(default_factory=list)
    tcp_connect: list[TCPConnect] | None = Field(default_factory=list)
    tls_handshakes: list[TLSHandshake] | None = Field(default_factory=list)
    requests: list[HTTPTransaction] | None = Field(default_factory=list)
    network_events: list[NetworkEvent] | None = Field(default_factory=list)
    x_dns_duplicate_responses: list[DNSQuery] | None = Field(default_factory=list)
    x_control_request: ControlRequest | None = None
    control: ControlResponse | dict[str, Any] | None = None
    control_failure: str | None = None
    dns_experiment_failure: str | None = None
    dns_consistency: str | None = None
    http_experiment_failure: str | None = None
    body_length_match: bool | None = None
    body_proportion: float = 0
    headers_match: bool | None = None
    status_code_match: bool | None = None
    title_match: bool | None = None
    blocking: str | bool | None = None
    accessible: bool | None = None


class Measurement(_Model):
    """The OONI base data format (df-000). ``test_keys`` is test-specific."""

    annotations: dict[str, Any] = Field(default_factory=dict)
    data_format_version: str = "0.2.0"
    extensions: dict[str, int] = Field(default_factory=dict)
    input: str | None = None
    measurement_start_time: str
    test_start_time: str
    probe_asn: str = "AS0"
    probe_cc: str = "ZZ"
    probe_ip: str = "127.0.0.1"
    probe_network_name: str = ""
    report_id: str = ""
    resolver_asn: str = "AS0"
    resolver_ip: str = ""
    resolver_network_name: str = ""
    software_name: str
    software_version: str
    test_helpers: dict[str, Any] = Field(default_factory=dict)
    test_keys: WebConnectivityTestKeys | dict[str, Any] | None = None
    test_name: str
    test_runtime: float = 0.0
    test_version: str


WEB_CONNECTIVITY_EXTENSIONS = {
    "dnst": 0,
    "httpt": 0,
    "netevents": 0,
    "tcpconnect": 0,
    "tlshandshake": 0,
}
