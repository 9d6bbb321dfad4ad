"""Per-measurement event recorder (the Python counterpart of probe-cli's measurexlite Trace).

One :class:`Trace` belongs to one measurement. It owns the measurement's zero time, hands out
transaction ids (1, 2, 3, ...) and holds the archival events that the stages append, already in
the OONI shape of :mod:`probe.archival`. Times are seconds relative to the zero, read from an
injected clock: inside a trio run the default is ``trio.current_time`` (so tests under
``autojump_clock`` see virtual time), outside one it is ``time.perf_counter``.

The trace is written by the stages of one measurement only (one trio run, no threads), so it
needs no lock; concurrent tasks of the same measurement append to it, never replace lists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import trio

from probe.archival import DNSQuery, HTTPTransaction, NetworkEvent, TCPConnect, TLSHandshake

Clock = Callable[[], float]


def _default_clock() -> Clock:
    try:
        trio.current_time()
    except RuntimeError:
        return time.perf_counter
    return trio.current_time


class Trace:
    """Events of one measurement, with times relative to :attr:`zero`."""

    def __init__(self, *, clock: Clock | None = None, zero: float | None = None) -> None:
        self.clock: Clock = clock if clock is not None else _default_clock()
        self.zero: float = zero if zero is not None else self.clock()
        self._next_id = 1
        self.queries: list[DNSQuery] = []
        self.dns_duplicates: list[DNSQuery] = []
        self.tcp_connect: list[TCPConnect] = []
        self.tls_handshakes: list[TLSHandshake] = []
        #: appended in order; the experiment reverses them (OONI wants newest first)
        self.requests: list[HTTPTransaction] = []
        self.network_events: list[NetworkEvent] = []

    def elapsed(self) -> float:
        """Seconds since the zero time."""
        return self.clock() - self.zero

    def new_transaction_id(self) -> int:
        """The next transaction id of this measurement: 1, 2, 3, ..."""
        tid = self._next_id
        self._next_id += 1
        return tid

    def record_network_event(
        self,
        operation: str,
        *,
        t0: float,
        transaction_id: int,
        address: str | None = None,
        failure: str | None = None,
        num_bytes: int | None = None,
        proto: str | None = "tcp",
        tags: Sequence[str] = (),
        t: float | None = None,
    ) -> NetworkEvent:
        """Append one df-008 network event ending now (or at ``t``) and return it."""
        event = NetworkEvent(
            address=address,
            failure=failure,
            num_bytes=num_bytes,
            operation=operation,
            proto=proto,
            t0=t0,
            t=self.elapsed() if t is None else t,
            tags=list(tags),
            transaction_id=transaction_id,
        )
        self.network_events.append(event)
        return event
