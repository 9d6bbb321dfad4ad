"""TCP stage: one connect to ONE ip:port, no retries, no racing (never ``open_tcp_stream``).

The connection comes from the :class:`~probe.net.Network` (one socket of the address's family,
connected once) under ``timeouts.connect``. The attempt is recorded as one ``TCPConnect`` plus
one ``connect`` network event and returned as a :class:`~probe.stages.result.StageResult`
whose value is the stream (None on failure), a :class:`CountedStream`: it counts the bytes the
connection receives below any TLS layered on it, so that the HTTP stage can follow a round
trip's progress as the bytes arrive (a TLS record completes only with its last byte, which on
a throttled path takes seconds). Failures are classified with
:data:`Operation.CONNECT` (``connection_refused``, ``host_unreachable``,
``network_unreachable``, ``timed_out`` from the kernel, ``generic_timeout_error`` when our
deadline fires, ``interrupted`` when an outer scope cancels us, which is then re-raised).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from probe.archival import TCPConnect, TCPConnectStatus
from probe.config import Timeouts
from probe.failures import OpFailure, classify, failed
from probe.net import TRIO, Network
from probe.netaddr import join_endpoint, parse_ip
from probe.stages.result import StageResult
from probe.trace import Trace
from probe.vocabulary import Failure, Operation

TCPResult = StageResult[trio.abc.HalfCloseableStream | None]


class CountedStream(trio.abc.HalfCloseableStream):
    """A connection that counts the bytes it received; ``listener`` (when set) is called after
    each receive that got bytes."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        self._stream = stream
        self.received = 0
        self.listener: Callable[[], None] | None = None

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._stream.receive_some(max_bytes)
        if data:
            self.received += len(data)
            if self.listener is not None:
                self.listener()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


def counted(stream: trio.abc.Stream) -> CountedStream | None:
    """The :class:`CountedStream` under ``stream`` (itself, or the transport of a TLS stream)."""
    if not isinstance(stream, CountedStream):
        stream = getattr(stream, "transport_stream", stream)
    return stream if isinstance(stream, CountedStream) else None


async def connect(
    trace: Trace,
    ip: str,
    port: int,
    *,
    timeouts: Timeouts,
    transaction_id: int,
    tags: Sequence[str] = (),
    net: Network = TRIO,
) -> TCPResult:
    """Connect to ``ip:port`` once; the stream is the result's value (None on failure)."""
    if parse_ip(ip) is None:
        raise ValueError(f"not an IP address: {ip!r}")
    t0 = trace.elapsed()
    error: OpFailure | None = None
    stream: trio.abc.HalfCloseableStream | None = None
    try:
        with trio.move_on_after(timeouts.connect) as scope:
            try:
                stream = CountedStream(await net.connect_tcp(ip, port))
            except OSError as exc:
                error = classify(exc, Operation.CONNECT)
        if scope.cancelled_caught:
            error = failed(Failure.GENERIC_TIMEOUT_ERROR, Operation.CONNECT)
    except trio.Cancelled:
        _record(trace, ip, port, t0, Failure.INTERRUPTED.value, transaction_id, tags)
        raise
    t = _record(trace, ip, port, t0, None if error is None else error.failure, transaction_id, tags)
    return StageResult(stream, error, Operation.CONNECT, transaction_id, t0, t)


def _record(
    trace: Trace,
    ip: str,
    port: int,
    t0: float,
    failure: str | None,
    transaction_id: int,
    tags: Sequence[str],
) -> float:
    t = trace.elapsed()
    trace.tcp_connect.append(
        TCPConnect(
            ip=ip,
            port=port,
            status=TCPConnectStatus(success=failure is None, failure=failure),
            t0=t0,
            t=t,
            tags=list(tags),
            transaction_id=transaction_id,
        )
    )
    trace.record_network_event(
        Operation.CONNECT.value,
        address=join_endpoint(ip, port),
        failure=failure,
        proto="tcp",
        t0=t0,
        t=t,
        transaction_id=transaction_id,
        tags=tags,
    )
    return t
