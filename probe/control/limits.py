"""Abuse limits of the control server: a per-client token bucket, an in-flight gate, and the
worst case they add up to.

Both are plain objects owned by one server instance (no module state) and both are bounded:
the rate limiter remembers at most ``max_clients`` buckets (least recently seen evicted first;
a bucket that has refilled to capacity carries no information and is dropped on sight), and the
gate is a counter. The server runs on one trio thread, so neither needs a lock.

The token bucket holds at most ``burst`` tokens (never more than a minute's worth) and refills
at ``rate_per_minute``: a client that has been quiet may send ``burst`` requests at once, then
one per ``60 / rate`` seconds. (A
bucket as large as the per-minute rate let 500 requests through in under a second.)

Clients are keyed by address *prefix* (IPv4 /32, IPv6 /64) so that one IPv6 host cannot mint
fresh buckets by rotating the low bits of its address.

**Memory.** Requests past ``max_concurrency`` get 503 before their body is read, and each
measured request reads at most ``body_cap`` bytes of the target's body, which it holds a few
times over while the HTTP stage records it (the growing buffer, its copy, the text or base64
copy in the trace, and the decoded copy of a compressed body): :data:`BODY_COPIES`.
:meth:`ServerLimits.worst_case_memory` is therefore ``BASE_MEMORY + max_concurrency *
BODY_COPIES * body_cap``; ``probe helper serve`` prints it at start, and
``tests/hostile/test_helper_bounds.py`` holds a real helper to it under 100 concurrent requests
for endless bodies.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: resident memory of an idle helper (interpreter, trio, hypercorn, ssl, the probe's stages)
BASE_MEMORY = 96 << 20
#: how many times a request's body may be in memory at once while it is measured
BODY_COPIES = 5


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one control server accepts."""

    #: largest request body, bytes
    max_body: int = 64 * 1024
    #: most ``ip:port`` items in ``tcp_connect`` (and most addresses measured in total)
    max_endpoints: int = 32
    #: requests measured at the same time; more get 503 (OONI answers 503 when overloaded)
    max_concurrency: int = 32
    #: requests per minute and client; 0 disables the limit
    rate_per_minute: float = 600.0
    #: bucket capacity: requests a quiet client may send at once (a probe at its default
    #: concurrency of 20 sends 20 at its start); 0 means "same as rate_per_minute"
    burst: float = 60.0
    #: most bytes of a target's body the helper reads (the probe reads 512 KiB)
    body_cap: int = 1 << 20
    #: clients remembered by the rate limiter
    max_clients: int = 10_000
    #: hard deadline for one request, seconds (the fetch alone has a 15 s budget)
    request_deadline: float = 45.0
    #: longest URL accepted
    max_url_length: int = 4096

    def worst_case_memory(self) -> int:
        """Bytes the helper may hold at most: see the module docstring."""
        return BASE_MEMORY + self.max_concurrency * BODY_COPIES * self.body_cap


def client_key(ip: str) -> str:
    """The rate-limit key of a client address: IPv4 as is, IPv6 by its /64."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """Token bucket per client key: ``rate_per_minute`` tokens per minute, ``burst`` at most."""

    def __init__(
        self,
        *,
        rate_per_minute: float,
        burst: float = 0.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute < 0 or burst < 0 or max_clients < 1:
            raise ValueError("rate, burst and max_clients must be positive")
        self._rate = rate_per_minute / 60.0
        # a burst never exceeds one minute's worth: a "2/min" limit lets 2 through, not 60
        self._capacity = min(burst, rate_per_minute) if burst else rate_per_minute
        self._max_clients = max_clients
        self._clock = clock
        #: key -> (tokens, time of last update), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, client_ip: str) -> bool:
        """Take one token for this client; False when it has none left."""
        if not self.enabled:
            return True
        key = client_key(client_ip)
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if tokens < self._capacity:
            self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        """Drop the oldest buckets that have refilled (they equal an absent bucket)."""
        while self._buckets:
            key, (tokens, last) = next(iter(self._buckets.items()))
            if tokens + (now - last) * self._rate < self._capacity:
                return
            del self._buckets[key]


class Overloaded(Exception):
    """Raised by :meth:`ConcurrencyGate.slot` when the server is at capacity."""


class ConcurrencyGate:
    """Counts requests in flight and refuses new ones past ``limit``."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.in_flight = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.in_flight >= self.limit:
            raise Overloaded
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
