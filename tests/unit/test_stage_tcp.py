"""probe.stages.tcp: one connect to one endpoint, against real loopback listeners."""

from __future__ import annotations

import pytest
import trio

from probe.config import Timeouts
from probe.netaddr import join_endpoint
from probe.stages.tcp import CountedStream, connect
from probe.trace import Trace
from tests.unit import servers

T = Timeouts(connect=2.0)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_connect_success(host: str) -> None:
    trace = Trace()
    async with servers.tcp_server(servers.silent, host=host) as srv:
        result = await connect(
            trace, host, srv.port, timeouts=T, transaction_id=7, tags=["depth=0"]
        )
        stream = result.value
        assert isinstance(stream, CountedStream) and stream.received == 0
        assert (result.ok, result.failure, result.transaction_id) == (True, None, 7)
        assert result.operation == "connect"
        await stream.aclose()
    (ev,) = trace.tcp_connect
    assert (ev.ip, ev.port, ev.status.success, ev.status.failure) == (host, srv.port, True, None)
    assert ev.status.blocked is None
    assert (ev.transaction_id, ev.tags) == (7, ["depth=0"])
    assert 0 <= ev.t0 <= ev.t
    (net,) = trace.network_events
    assert (net.operation, net.address, net.failure, net.proto) == (
        "connect",
        join_endpoint(host, srv.port),
        None,
        "tcp",
    )
    assert (net.t0, net.t, net.transaction_id) == (ev.t0, ev.t, 7)
    assert (result.t0, result.t) == (ev.t0, ev.t)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_connect_refused(host: str) -> None:
    trace = Trace()
    port = servers.closed_port(host)
    result = await connect(trace, host, port, timeouts=T, transaction_id=1)
    assert result.value is None
    assert result.error is not None
    assert (result.error.failure, result.error.operation) == ("connection_refused", "connect")
    (ev,) = trace.tcp_connect
    assert ev.status.success is False
    assert ev.status.failure == "connection_refused"
    assert trace.network_events[0].failure == "connection_refused"


async def test_deadline_records_generic_timeout() -> None:
    # a zero deadline fires at connect's first checkpoint: the timeout path, deterministically
    # (a loopback connect that hangs is not reproducible; TLS/HTTP tests use silent servers)
    trace = Trace()
    async with servers.tcp_server(servers.silent) as srv:
        out = await connect(
            trace, "127.0.0.1", srv.port, timeouts=Timeouts(connect=0.0), transaction_id=1
        )
    assert out.value is None and out.failure == "generic_timeout_error"
    assert trace.tcp_connect[0].status.failure == "generic_timeout_error"


async def test_outer_cancel_recorded_and_reraised() -> None:
    trace = Trace()
    with trio.CancelScope() as outer:
        outer.cancel()
        await connect(trace, "127.0.0.1", servers.closed_port(), timeouts=T, transaction_id=1)
        pytest.fail("Cancelled was swallowed")  # pragma: no cover
    assert outer.cancelled_caught
    assert trace.tcp_connect[0].status.failure == "interrupted"


async def test_not_an_ip_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        await connect(Trace(), "localhost", 80, timeouts=T, transaction_id=1)
