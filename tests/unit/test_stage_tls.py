"""probe.stages.tls: handshakes against real loopback TLS servers with trustme certificates."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import trio
import trio.testing
from cryptography import x509

from probe.config import Timeouts
from probe.stages.tcp import connect
from probe.stages.tls import handshake, make_ssl_context
from probe.trace import Trace
from tests.unit import servers

T = Timeouts(connect=5.0, tls=5.0)


@pytest.fixture
def certs(tmp_path: Path) -> servers.Certs:
    return servers.Certs(tmp_path)


async def _run(
    trace: Trace,
    server_ctx: ssl.SSLContext | None,
    client_ctx: ssl.SSLContext,
    server_name: str | None,
    *,
    handler: servers.StreamHandler = servers.silent,
    timeouts: Timeouts = T,
    host: str = "127.0.0.1",
) -> trio.SSLStream[trio.abc.Stream] | None:
    async with servers.tcp_server(handler, host=host, ssl_context=server_ctx) as srv:
        tcp = (await connect(trace, host, srv.port, timeouts=timeouts, transaction_id=3)).value
        assert tcp is not None
        result = await handshake(
            trace,
            tcp,
            address=srv.address,
            server_name=server_name,
            ssl_context=client_ctx,
            timeouts=timeouts,
            transaction_id=3,
            tags=["depth=0"],
        )
        # the result says what the recorded event says
        assert result.failure == trace.tls_handshakes[-1].failure
        assert (result.transaction_id, result.operation) == (3, "tls_handshake")
        assert (result.t0, result.t) == (trace.tls_handshakes[-1].t0, trace.tls_handshakes[-1].t)
        tls = result.value
        if tls is not None:
            await tls.aclose()
        else:
            # the stage closed the transport on failure
            with pytest.raises(trio.ClosedResourceError):
                await tcp.send_all(b"x")
        return tls


def _leaf(event_certs: list[object] | None) -> x509.Certificate:
    assert event_certs
    first = event_certs[0]
    return x509.load_der_x509_certificate(base64.b64decode(first.data))  # type: ignore[attr-defined]


def _sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(v) for v in ext.value.get_values_for_type(x509.DNSName)]


async def test_success_records_everything(certs: servers.Certs) -> None:
    seen: list[str | None] = []
    server = certs.server_context("good.test")
    server.sni_callback = lambda obj, name, ctx: seen.append(name)
    trace = Trace()
    tls = await _run(trace, server, make_ssl_context(ca_file=certs.ca_file), "good.test")
    assert tls is not None
    assert seen == ["good.test"]
    (ev,) = trace.tls_handshakes
    assert ev.failure is None and ev.no_tls_verify is False
    assert ev.tls_version == "TLSv1.3" and ev.cipher_suite.startswith("TLS_")
    assert ev.negotiated_protocol == "http/1.1"
    assert (ev.server_name, ev.network, ev.transaction_id, ev.tags) == (
        "good.test",
        "tcp",
        3,
        ["depth=0"],
    )
    assert "good.test" in _sans(_leaf(ev.peer_certificates))  # type: ignore[arg-type]
    assert 0 <= ev.t0 <= ev.t


async def test_tls12_cipher_is_iana_name(certs: servers.Certs) -> None:
    server = certs.server_context("good.test")
    server.maximum_version = ssl.TLSVersion.TLSv1_2
    trace = Trace()
    assert await _run(trace, server, make_ssl_context(ca_file=certs.ca_file), "good.test")
    ev = trace.tls_handshakes[0]
    assert ev.tls_version == "TLSv1.2"
    assert ev.cipher_suite.startswith("TLS_ECDHE_ECDSA_WITH_")


async def test_ip_literal_sends_no_sni(certs: servers.Certs) -> None:
    seen: list[str | None] = []
    server = certs.server_context("127.0.0.1")
    server.sni_callback = lambda obj, name, ctx: seen.append(name)
    trace = Trace()
    assert await _run(trace, server, make_ssl_context(ca_file=certs.ca_file), "127.0.0.1")
    assert seen == [None]
    assert trace.tls_handshakes[0].failure is None


async def test_ipv6(certs: servers.Certs) -> None:
    trace = Trace()
    ctx = make_ssl_context(ca_file=certs.ca_file)
    assert await _run(trace, certs.server_context("v6.test"), ctx, "v6.test", host="::1")
    assert trace.tls_handshakes[0].address.startswith("[::1]:")


@pytest.mark.parametrize(
    ("kind", "failure"),
    [
        ("wrong_host", "ssl_invalid_hostname"),
        ("self_signed", "ssl_unknown_authority"),
        ("expired", "ssl_invalid_certificate"),
    ],
)
async def test_verification_failure_keeps_the_certificate(
    certs: servers.Certs, kind: str, failure: str
) -> None:
    server = certs.server_context(
        "good.test", self_signed=kind == "self_signed", expired=kind == "expired"
    )
    name = "blocked.test" if kind == "wrong_host" else "good.test"
    trace = Trace()
    assert await _run(trace, server, make_ssl_context(ca_file=certs.ca_file), name) is None
    (ev,) = trace.tls_handshakes
    assert ev.failure == failure
    assert ev.tls_version == "" and ev.negotiated_protocol == ""
    assert "good.test" in _sans(_leaf(ev.peer_certificates))  # type: ignore[arg-type]


async def test_certifi_alone_does_not_trust_the_lab_ca(certs: servers.Certs) -> None:
    trace = Trace()
    assert (
        await _run(trace, certs.server_context("good.test"), make_ssl_context(), "good.test")
        is None
    )
    assert trace.tls_handshakes[0].failure == "ssl_unknown_authority"


async def test_no_verify_context(certs: servers.Certs) -> None:
    server = certs.server_context("good.test", self_signed=True)
    trace = Trace()
    tls = await _run(trace, server, make_ssl_context(verify=False), "innocuous.test")
    assert tls is not None
    ev = trace.tls_handshakes[0]
    assert ev.failure is None and ev.no_tls_verify is True and ev.peer_certificates


async def test_reset_after_client_hello(certs: servers.Certs) -> None:
    trace = Trace()
    ctx = make_ssl_context(ca_file=certs.ca_file)
    assert (
        await _run(trace, None, ctx, "blocked.test", handler=servers.rst_after_client_hello) is None
    )
    ev = trace.tls_handshakes[0]
    assert ev.failure == "connection_reset"
    assert ev.peer_certificates is None


async def test_silent_server_times_out(
    certs: servers.Certs, autojump_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    ctx = make_ssl_context(ca_file=certs.ca_file)
    timeouts = Timeouts(connect=1000.0, tls=7.0)
    assert await _run(trace, None, ctx, "blocked.test", timeouts=timeouts) is None
    ev = trace.tls_handshakes[0]
    assert ev.failure == "generic_timeout_error"
    assert ev.t - ev.t0 == pytest.approx(7.0)


async def test_outer_cancel_recorded_and_reraised(certs: servers.Certs) -> None:
    trace = Trace()
    ctx = make_ssl_context(ca_file=certs.ca_file)
    async with servers.tcp_server(servers.silent) as srv:
        tcp = (await connect(trace, "127.0.0.1", srv.port, timeouts=T, transaction_id=1)).value
        assert tcp is not None
        with trio.move_on_after(0.05) as outer:
            await handshake(
                trace,
                tcp,
                address=srv.address,
                server_name="x.test",
                ssl_context=ctx,
                timeouts=T,
                transaction_id=1,
            )
            pytest.fail("Cancelled was swallowed")  # pragma: no cover
    assert outer.cancelled_caught
    assert trace.tls_handshakes[0].failure == "interrupted"


def test_context_settings(certs: servers.Certs) -> None:
    ctx = make_ssl_context(ca_file=certs.ca_file, alpn=("h2", "http/1.1"))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] > 100  # Mozilla roots + ours
    loose = make_ssl_context(verify=False)
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
