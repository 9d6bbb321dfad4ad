"""TCP stage: one connect to ONE ip:port, no retries, no racing (never ``open_tcp_stream``).

The socket is a plain ``trio.socket`` socket of the address's family (IPv4 or IPv6), connected
once under ``timeouts.connect``. The attempt is recorded as one ``TCPConnect`` plus one
``connect`` network event. Failures are classified with :data:`Operation.CONNECT`
(``connection_refused``, ``host_unreachable``, ``network_unreachable``, ``timed_out`` from the
kernel, ``generic_timeout_error`` when our deadline fires, ``interrupted`` when an outer scope
cancels us, which is then re-raised).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import trio

from probe.archival import TCPConnect, TCPConnectStatus
from probe.config import Timeouts
from probe.failures import Failure, Operation, classify
from probe.netaddr import join_endpoint, parse_ip
from probe.trace import Trace


async def connect(
    trace: Trace,
    ip: str,
    port: int,
    *,
    timeouts: Timeouts,
    transaction_id: int,
    tags: Sequence[str] = (),
) -> trio.SocketStream | None:
    """Connect to ``ip:port`` once. Returns the stream, or None after recording the failure."""
    addr = parse_ip(ip)
    if addr is None:
        raise ValueError(f"not an IP address: {ip!r}")
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    t0 = trace.elapsed()
    failure: str | None = None
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        with trio.move_on_after(timeouts.connect) as scope:
            try:
                await sock.connect((ip, port))
            except OSError as exc:
                failure = classify(exc, Operation.CONNECT).failure
        if scope.cancelled_caught:
            failure = Failure.GENERIC_TIMEOUT_ERROR.value
    except trio.Cancelled:
        sock.close()
        _record(trace, ip, port, t0, Failure.INTERRUPTED.value, transaction_id, tags)
        raise
    _record(trace, ip, port, t0, failure, transaction_id, tags)
    if failure is not None:
        sock.close()
        return None
    return trio.SocketStream(sock)


def _record(
    trace: Trace,
    ip: str,
    port: int,
    t0: float,
    failure: str | None,
    transaction_id: int,
    tags: Sequence[str],
) -> None:
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
        "connect",
        address=join_endpoint(ip, port),
        failure=failure,
        proto="tcp",
        t0=t0,
        t=t,
        transaction_id=transaction_id,
        tags=tags,
    )
