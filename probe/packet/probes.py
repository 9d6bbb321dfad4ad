"""One TTL-limited probe: a kernel TCP connection whose trigger leaves with IP TTL n, or one DNS
query with IP TTL n.

Why kernel sockets and not packets crafted in userspace: the kernel owns the connection, so it
completes a real handshake with the real server, answers the server as a TCP stack should, and
no firewall rule is needed to stop it from resetting a connection it does not know about; if
the probe dies, nothing is left behind on the volunteer's machine. The price:

- the handshake runs at the default TTL; only the trigger (and whatever the socket sends after
  it) leaves with TTL n, set with ``IP_TTL`` just before the write;
- the kernel retransmits an unacknowledged trigger after its RTO (the smoothed RTT plus at
  least 200 ms) with the same TTL: the probe stops listening the linger after the first reply
  (a floor plus two RTTs, :func:`linger`), shorter than the RTO on paths under 100 ms, so it is
  mostly probes that draw no reply that retransmit; every packet is counted (``tcpi_segs_out``
  of the socket, plus the closing RST);
- the connection is closed abortively (``SO_LINGER`` 0) after restoring the default TTL: the RST
  reaches the server, which can forget the connection at once, and the unsent trigger is
  dropped instead of being retransmitted at full TTL. When the trigger never reached the server
  the RST's sequence number is ahead of what the server expects: it answers with a challenge
  ACK (RFC 5961) and our kernel, the socket gone, with a second RST that it accepts. Packets
  that arrive after the close are recorded apart (``late_replies``) and each one that is not a
  RST is counted as drawing one more RST from us.

Replies are read from :class:`probe.packet.capture.Capture`, never from the socket. A failed
connect is recorded with its OONI failure string; there are no retries.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from probe.config import Timeouts
from probe.failures import Failure, Operation, classify
from probe.packet import sockets
from probe.packet.capture import Capture, Captured
from probe.packet.wire import Key

#: tcp_info (linux/tcp.h): tcpi_state is byte 0, tcpi_rtt (us) at 68, tcpi_segs_out at 136
_TCP_INFO_LEN = 144
#: states in which an abortive close sends a RST (tcp_need_reset)
_RESET_STATES = frozenset({1, 3, 4, 5, 8})  # ESTABLISHED, SYN_RECV, FIN_WAIT1/2, CLOSE_WAIT


@dataclass(frozen=True, slots=True)
class Probe:
    """What one TTL-limited probe did (the replies stay in the capture, under ``key``)."""

    ttl: int
    role: str  # "control", "target" or "other-port"
    key: Key
    t0: float
    t: float
    #: when the trigger was handed to the kernel (None: it never was)
    sent_at: float | None
    #: when the probe stopped listening and closed its socket
    closed_at: float
    failure: str | None
    packets_sent: int
    #: the connection's smoothed round trip after the handshake (TCP), in seconds
    rtt: float | None
    #: at the end of the probe: a reply from the peer (not a SYN-ACK) / an ICMP error
    peer: bool
    icmp: bool

    @property
    def silent(self) -> bool:
        return self.failure is None and not self.peer and not self.icmp


@dataclass(frozen=True, slots=True)
class TCPInfo:
    state: int
    rtt: float
    segs_out: int


def tcp_info(sock: sockets.Socket) -> TCPInfo | None:
    """The socket's TCP_INFO, or None once the socket is closed (trio closes it when a connect
    is cancelled)."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    if len(raw) < 140:  # a kernel older than 4.2 has no segs_out: count the minimum
        return TCPInfo(state=raw[0], rtt=0.0, segs_out=0)
    (rtt_us,) = struct.unpack_from("I", raw, 68)
    (segs_out,) = struct.unpack_from("I", raw, 136)
    return TCPInfo(state=raw[0], rtt=rtt_us / 1e6, segs_out=segs_out)


def syn_count(timeout: float) -> int:
    """SYNs Linux sends within ``timeout`` (initial RTO 1 s, doubling: at 0, 1, 3, 7, 15 s)."""
    count, at, rto = 1, 1.0, 2.0
    while at < timeout:
        count += 1
        at += rto
        rto *= 2
    return count


def linger(timeouts: Timeouts, rtt: float) -> float:
    """How long to keep listening after the first reply (config: twice the RTT plus a floor)."""
    return min(timeouts.packet_linger, timeouts.packet_linger_floor + 2 * rtt)


async def tcp_probe(
    address: str,
    port: int,
    *,
    ttl: int,
    role: str,
    payload: bytes | None,
    capture: Capture,
    timeouts: Timeouts,
) -> Probe:
    """Connect to ``address:port``, send ``payload`` with IP TTL ``ttl``, listen, reset.

    Without ``payload`` only the handshake is made (at the default TTL), then the reset."""
    sock = await sockets.tcp()
    with sock:
        key: Key = ("tcp", sock.getsockname()[1])
        t0 = trio.current_time()
        failure: str | None = None
        with trio.move_on_after(timeouts.connect) as scope:
            try:
                await sock.connect((address, port))
            except OSError as exc:
                failure = classify(exc, Operation.CONNECT).failure
        if scope.cancelled_caught:
            failure = Failure.GENERIC_TIMEOUT_ERROR.value
        if failure is not None:
            info = tcp_info(sock)
            sent = info.segs_out if info is not None else syn_count(timeouts.connect)
            return _result(ttl, role, key, t0, None, failure, max(sent, 1), None, capture)
        first = tcp_info(sock)
        rtt = first.rtt if first is not None else 0.0
        default_ttl = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
        sent_at: float | None = None
        if payload is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            sent_at = trio.current_time()
            try:
                await sock.send(payload)
            except OSError as exc:  # reset before we wrote: the connection is gone
                failure = classify(exc, Operation.WRITE).failure
                sent_at = None
        if sent_at is not None:
            await _listen(capture, key, sent_at, timeouts, lambda first: linger(timeouts, rtt))
        info = tcp_info(sock) or TCPInfo(state=0, rtt=rtt, segs_out=3)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, default_ttl)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sent = info.segs_out + (1 if info.state in _RESET_STATES else 0)
    return _result(ttl, role, key, t0, sent_at, failure, sent, rtt, capture)


async def dns_probe(
    address: str,
    port: int,
    *,
    ttl: int,
    role: str,
    payload: bytes,
    capture: Capture,
    timeouts: Timeouts,
) -> Probe:
    """Send one DNS query (``payload``) with IP TTL ``ttl`` from a fresh UDP socket and listen.

    After a first answer the probe listens ``packet_linger`` more (a forged answer from nearby
    comes first, the genuine one later), as the web test's resolver keeps listening; after a
    router's ICMP error, only as long as a TCP probe would (twice that round trip, plus a floor):
    an injector before that router answers as fast.
    """

    def after_first(first: Captured) -> float:
        if first.origin == "icmp" and sent_at is not None:
            return linger(timeouts, first.t - sent_at)
        return timeouts.packet_linger

    sock = await sockets.udp()
    with sock:
        key: Key = ("udp", sock.getsockname()[1])
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        t0 = trio.current_time()
        failure: str | None = None
        sent_at: float | None = t0
        try:
            await sock.sendto(payload, (address, port))
        except OSError as exc:
            failure = classify(exc, Operation.WRITE).failure
            sent_at = None
        if sent_at is not None:
            await _listen(capture, key, sent_at, timeouts, after_first)
    return _result(ttl, role, key, t0, sent_at, failure, 1 if sent_at else 0, None, capture)


async def _listen(
    capture: Capture,
    key: Key,
    sent_at: float,
    timeouts: Timeouts,
    after_first: Callable[[Captured], float],
) -> None:
    """Wait for the first reply (at most ``packet_reply``), then ``after_first(it)`` more."""
    with trio.move_on_after(timeouts.packet_reply) as waited:
        await capture.wait_after(key, sent_at)
    if not waited.cancelled_caught:
        await trio.sleep(after_first(capture.after(key, sent_at)[0]))


def _result(
    ttl: int,
    role: str,
    key: Key,
    t0: float,
    sent_at: float | None,
    failure: str | None,
    sent: int,
    rtt: float | None,
    capture: Capture,
) -> Probe:
    """The probe's record, its socket just closed: what came back while it listened."""
    closed_at = trio.current_time()
    replies = capture.between(key, sent_at, closed_at) if sent_at is not None else []
    return Probe(
        ttl=ttl,
        role=role,
        key=key,
        t0=t0,
        t=closed_at,
        sent_at=sent_at,
        closed_at=closed_at,
        failure=failure,
        packets_sent=sent,
        rtt=rtt,
        peer=any(c.origin == "peer" for c in replies),
        icmp=any(c.origin == "icmp" for c in replies),
    )
