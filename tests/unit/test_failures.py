"""probe.failures: classification of REAL exceptions provoked on loopback, plus totality."""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.message
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from probe.failures import (
    UNKNOWN_FAILURE_PREFIX,
    Failure,
    Operation,
    OpFailure,
    classify,
    classify_dns_rcode,
    failed,
    is_failure_string,
    scrub_ips,
)
from tests.unit import servers

# --- the table ------------------------------------------------------------------------------


def test_values_are_the_member_names_lowercased() -> None:
    for f in Failure:
        assert f.value == f.name.lower()
        assert Failure(f.value) is f


def test_errno_column_names_real_errnos() -> None:
    for f in Failure:
        if f.errno_name is not None:
            assert isinstance(getattr(errno, f.errno_name), int), f


@pytest.mark.parametrize(
    ("rcode", "expected"),
    [
        (0, None),
        (3, "dns_nxdomain_error"),
        (2, "dns_servfail_error"),
        (5, "dns_refused_error"),
        (1, "dns_server_misbehaving"),
        (4, "dns_server_misbehaving"),
    ],
)
def test_classify_dns_rcode(rcode: int, expected: str | None) -> None:
    assert classify_dns_rcode(rcode) == expected


# --- provoked OS / trio errors ----------------------------------------------------------------


async def test_connect_to_closed_port_is_connection_refused() -> None:
    sock = trio.socket.socket()
    with sock, pytest.raises(OSError) as info:
        await sock.connect(("127.0.0.1", servers.closed_port()))
    assert classify(info.value, Operation.CONNECT).failure == "connection_refused"


async def test_reset_wrapped_by_trio_is_connection_reset() -> None:
    async def rst(stream: trio.abc.Stream) -> None:
        await stream.receive_some(10)
        servers.reset(stream)

    async with servers.tcp_server(rst) as srv:
        stream = await trio.open_tcp_stream(srv.host, srv.port)
        await stream.send_all(b"hello")
        with pytest.raises(trio.BrokenResourceError) as info:
            while await stream.receive_some(100):
                pass  # pragma: no cover
        await stream.aclose()
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert classify(info.value, Operation.READ).failure == "connection_reset"


async def test_closed_resource() -> None:
    async with servers.tcp_server(servers.silent) as srv:
        stream = await trio.open_tcp_stream(srv.host, srv.port)
        await stream.aclose()
        with pytest.raises(trio.ClosedResourceError) as info:
            await stream.send_all(b"x")
    assert classify(info.value, Operation.WRITE).failure == "connection_already_closed"


async def test_too_slow_is_generic_timeout(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(trio.TooSlowError) as info:
        with trio.fail_after(1):
            await trio.sleep(5)
    assert classify(info.value, Operation.TOP_LEVEL).failure == "generic_timeout_error"


def test_socket_timeout_is_generic_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.001)
        with pytest.raises(TimeoutError) as info:
            s.recv(10)
    assert classify(info.value, Operation.READ).failure == "generic_timeout_error"


# --- getaddrinfo codes (provoked locally: numeric-only lookups never leave the host) ---------


@pytest.mark.parametrize(
    ("host", "service", "family", "expected"),
    [
        ("not-a-number.example", None, 0, "dns_nxdomain_error"),  # EAI_NONAME
        ("127.0.0.1", "no-such-service-x", 0, "dns_server_misbehaving"),  # EAI_SERVICE
        ("127.0.0.1", None, 12345, "dns_server_misbehaving"),  # EAI_FAMILY
    ],
)
def test_provoked_gaierror(host: str, service: str | None, family: int, expected: str) -> None:
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo(host, service, family=family, flags=socket.AI_NUMERICHOST)
    assert classify(info.value, Operation.RESOLVE).failure == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # these need a real resolver answering; the exception type and code are the real ones
        (socket.EAI_NODATA, "dns_no_answer"),
        (socket.EAI_AGAIN, "dns_temporary_failure"),
        (socket.EAI_FAIL, "dns_non_recoverable_failure"),
        (socket.EAI_NONAME, "dns_nxdomain_error"),
    ],
)
def test_gaierror_codes(code: int, expected: str) -> None:
    assert classify(socket.gaierror(code, "x"), Operation.RESOLVE).failure == expected


# --- dnspython --------------------------------------------------------------------------------


def test_malformed_dns_message_is_server_misbehaving() -> None:
    with pytest.raises(dns.exception.DNSException) as info:
        dns.message.from_wire(b"\x00\x01\x02")
    assert classify(info.value, Operation.DNS_ROUND_TRIP).failure == "dns_server_misbehaving"


@pytest.mark.parametrize(
    ("rcode", "drop", "expected"),
    [(3, False, "dns_nxdomain_error"), (0, False, "dns_no_answer"),
     (0, True, "generic_timeout_error")],
)  # fmt: skip
async def test_dnspython_resolver_exceptions(rcode: int, drop: bool, expected: str) -> None:
    def handler(query: dns.message.Message) -> dns.message.Message | None:
        return None if drop else servers.rcode_reply(query, rcode)

    async with servers.dns_server(handler) as srv:
        ip, port = srv.address.rsplit(":", 1)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [ip]
        resolver.port = int(port)
        resolver.lifetime = 0.2
        with pytest.raises(dns.exception.DNSException) as info:
            await resolver.resolve("name.test", "A")
    assert classify(info.value, Operation.RESOLVE).failure == expected


# --- TLS, against real loopback servers -----------------------------------------------------


async def _client_handshake_error(
    server_ctx: ssl.SSLContext | None,
    client_ctx: ssl.SSLContext,
    server_name: str,
    handler: servers.StreamHandler | None = None,
) -> BaseException:
    async def hold(stream: trio.abc.Stream) -> None:
        await trio.sleep_forever()

    async with servers.tcp_server(handler or hold, ssl_context=server_ctx) as srv:
        tcp = await trio.open_tcp_stream(srv.host, srv.port)
        tls = trio.SSLStream(tcp, client_ctx, server_hostname=server_name)
        with pytest.raises(trio.BrokenResourceError) as info:
            await tls.do_handshake()
        await trio.aclose_forcefully(tcp)
    return info.value


def _client(certs: servers.Certs, **kw: object) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca_file))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


async def test_tls_wrong_host(certs: servers.Certs) -> None:
    exc = await _client_handshake_error(
        certs.server_context("good.test"), _client(certs), "other.test"
    )
    assert isinstance(exc.__cause__, ssl.SSLCertVerificationError)
    assert exc.__cause__.verify_code == 62
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_invalid_hostname"


async def test_tls_untrusted_issuer(certs: servers.Certs) -> None:
    exc = await _client_handshake_error(
        certs.server_context("good.test", self_signed=True), _client(certs), "good.test"
    )
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_unknown_authority"


async def test_tls_expired(certs: servers.Certs) -> None:
    exc = await _client_handshake_error(
        certs.server_context("good.test", expired=True), _client(certs), "good.test"
    )
    assert isinstance(exc.__cause__, ssl.SSLCertVerificationError)
    assert exc.__cause__.verify_code == 10
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_invalid_certificate"


async def test_tls_eof_during_handshake(certs: servers.Certs) -> None:
    async def close_after_hello(stream: trio.abc.Stream) -> None:
        await stream.receive_some(65536)
        await stream.aclose()

    exc = await _client_handshake_error(None, _client(certs), "good.test", close_after_hello)
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "eof_error"


async def test_tls_reset_during_handshake(certs: servers.Certs) -> None:
    exc = await _client_handshake_error(
        None, _client(certs), "good.test", servers.rst_after_client_hello
    )
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "connection_reset"


async def test_tls_garbage_is_failed_handshake(certs: servers.Certs) -> None:
    async def http_reply(stream: trio.abc.Stream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
        await trio.sleep_forever()

    exc = await _client_handshake_error(None, _client(certs), "good.test", http_reply)
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_failed_handshake"


async def test_tls_version_mismatch_is_failed_handshake(certs: servers.Certs) -> None:
    server = certs.server_context("good.test")
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    client = _client(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    exc = await _client_handshake_error(server, client, "good.test")
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_failed_handshake"


async def test_tls_alert_unrecognized_name_is_invalid_hostname(certs: servers.Certs) -> None:
    server = certs.server_context("good.test")

    def refuse(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> int:
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME

    server.sni_callback = refuse
    exc = await _client_handshake_error(server, _client(certs), "good.test")
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_invalid_hostname"


# --- fallback and scrubbing -----------------------------------------------------------------


def test_unknown_keeps_scrubbed_text() -> None:
    try:
        raise ValueError("cannot talk to 10.1.2.3:443 or [2001:db8::1]:80 via fe80::1%eth0")
    except ValueError as exc:
        out = classify(exc, Operation.TOP_LEVEL).failure
    assert out.startswith(UNKNOWN_FAILURE_PREFIX)
    assert "10.1.2.3" not in out and "2001:db8" not in out and "fe80" not in out
    assert out.count("[scrubbed]") == 3


def test_cause_chain_is_walked() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        except OSError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as exc:
        assert classify(exc, Operation.CONNECT).failure == "connection_refused"


def test_failure_is_bound_to_its_operation() -> None:
    out = classify(ConnectionResetError(errno.ECONNRESET, "reset"), Operation.READ)
    assert out == OpFailure("connection_reset", Operation.READ)
    assert out.operation is Operation.READ and str(out) == "connection_reset"
    assert failed(Failure.GENERIC_TIMEOUT_ERROR, Operation.CONNECT) == OpFailure(
        "generic_timeout_error", Operation.CONNECT
    )


def test_the_operation_chooses_the_tls_classifier() -> None:
    """A TLS alert fails a handshake; on an established session (a read, an HTTP round trip)
    the same error is no handshake failure (netxlite runs its TLS classifier on handshakes)."""
    exc = ssl.SSLError(1, "[SSL: BAD_RECORD_MAC] bad record mac")
    assert classify(exc, Operation.TLS_HANDSHAKE).failure == "ssl_failed_handshake"
    for op in (Operation.READ, Operation.HTTP_ROUND_TRIP):
        out = classify(exc, op)
        assert out.failure.startswith(UNKNOWN_FAILURE_PREFIX), op
        assert out.operation is op
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert classify(eof, Operation.READ).failure == "eof_error"


def test_cyclic_chain_terminates() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a, Operation.UNKNOWN).failure == "unknown_failure: ValueError: a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dial tcp 93.184.216.34:443: i/o timeout", "dial tcp [scrubbed]: i/o timeout"),
        ("read udp [::1]:53 failed", "read udp [scrubbed] failed"),
        ("peer 2a00:1450:4001:80b::200e said no", "peer [scrubbed] said no"),
        ("mapped ::ffff:192.0.2.1 here", "mapped [scrubbed] here"),
        ("version 10.1.2.3.4 is not an address", "version 10.1.2.3.4 is not an address"),
        (
            "no address here, std::vector 1.2.3 12:30:45",
            "no address here, std::vector 1.2.3 12:30:45",
        ),
    ],
)
def test_scrub_ips(text: str, expected: str) -> None:
    assert scrub_ips(text) == expected


@given(
    ip=st.ip_addresses(),
    port=st.none() | st.integers(min_value=0, max_value=65535),
    before=st.text(alphabet="abc xyz,;()", max_size=10),
    after=st.text(alphabet="abc xyz,;()", max_size=10),
)
def test_scrub_removes_any_ip(ip: object, port: int | None, before: str, after: str) -> None:
    text = str(ip)
    if port is not None:
        text = f"[{text}]:{port}" if ":" in text else f"{text}:{port}"
    out = scrub_ips(f"{before} {text} {after}")
    assert str(ip) not in out
    assert "[scrubbed]" in out


_EXC_TYPES = [
    OSError,
    ConnectionError,
    TimeoutError,
    ValueError,
    RuntimeError,
    trio.BrokenResourceError,
    ssl.SSLError,
    dns.exception.DNSException,
    KeyError,
]


@st.composite
def exceptions(draw: st.DrawFn) -> BaseException:
    kind = draw(st.sampled_from(["plain", "errno", "gai", "verify", "chained"]))
    text = draw(st.text(max_size=30))
    exc: BaseException
    if kind == "errno":
        exc = OSError(draw(st.integers(min_value=-200, max_value=200)), text)
    elif kind == "gai":
        exc = socket.gaierror(draw(st.integers(min_value=-20, max_value=20)), text)
    elif kind == "verify":
        exc = ssl.SSLCertVerificationError(1, text)
        exc.verify_code = draw(st.integers(min_value=-5, max_value=100))
    else:
        exc = draw(st.sampled_from(_EXC_TYPES))(text)
    if kind == "chained":
        outer = draw(st.sampled_from(_EXC_TYPES))()
        outer.__cause__ = exc
        exc = outer
    return exc


@given(exc=exceptions(), op=st.sampled_from(list(Operation)))
def test_classify_is_total(exc: BaseException, op: Operation) -> None:
    out = classify(exc, op)
    assert isinstance(out.failure, str)
    assert is_failure_string(out.failure)
    assert out.operation is op
    assert str(out) == out.value == out.failure
