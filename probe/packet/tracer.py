"""The two traces of one target: the innocuous control first, then the real trigger.

Stopping rules (docs/packet.md, "The procedure"), one probe per TTL, no retries:

- **control** (innocuous SNI/Host/name): TTL 1, 2, ... until the peer answers (that TTL is the
  path length), a connection cannot be made (nothing to trace), ``gap_limit`` TTLs in a row
  draw no reply at all, or ``max_ttl``;
- **target** (the real trigger): TTL 1, 2, ... up to the control's last TTL. At the first TTL
  where a packet comes back from the peer's address (the server's answer, or a forged one before
  the path's end), or after ``gap_limit`` TTLs in a row that stay silent where the control drew
  a reply (a drop), the trace jumps to the control's last TTL for one confirming probe at the
  full path, and ends. A failed connection ends it too (residual blocking is recorded, never
  retried).

The control runs first so that a censor's residual blocking (some block an address for minutes
after a trigger) cannot spoil it. A :class:`Budget` stops a trace before a probe that could
exceed the per-target packet cap; a :class:`Pacer` spaces probe starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from probe.packet.probes import Probe
from probe.packet.spec import PacketLimits

#: (ttl, role) -> the probe's record
Prober = Callable[[int, str], Awaitable[Probe]]


@dataclass(slots=True)
class Budget:
    """Packets one target may still send; ``truncated`` once a probe was refused."""

    limit: int
    spent: int = 0
    truncated: bool = False

    def allows(self, worst_case: int) -> bool:
        if self.spent + worst_case > self.limit:
            self.truncated = True
            return False
        return True

    def spend(self, packets: int) -> None:
        self.spent += packets


@dataclass(slots=True)
class Pacer:
    """At most ``rate`` probe starts per second (trio clock)."""

    rate: float
    _next: float | None = field(default=None)

    async def wait(self) -> None:
        now = trio.current_time()
        if self._next is not None and now < self._next:
            await trio.sleep_until(self._next)
            now = self._next
        self._next = now + 1.0 / self.rate


@dataclass(frozen=True, slots=True)
class Traces:
    control: list[Probe]
    target: list[Probe]


async def trace_pair(
    probe: Prober, *, limits: PacketLimits, budget: Budget, pacer: Pacer, worst_case: int
) -> Traces:
    """Run the control trace, then the target trace, under the stopping rules above."""

    async def step(ttl: int, role: str) -> Probe | None:
        p = await single(probe, ttl, role, budget=budget, pacer=pacer, worst_case=worst_case)
        if p is not None:
            (control if role == "control" else target).append(p)
        return p

    control: list[Probe] = []
    target: list[Probe] = []
    for ttl in range(1, limits.max_ttl + 1):
        p = await step(ttl, "control")
        if p is None:
            break
        if p.failure is not None or p.peer:
            break
        if _trailing_silence(control) >= limits.gap_limit:
            break
    if not control or control[0].failure is not None:
        return Traces(control, target)
    last = control[-1].ttl
    by_ttl = {p.ttl: p for p in control}
    ttl, gap, confirming = 1, 0, False
    while ttl <= last:
        p = await step(ttl, "target")
        if p is None:
            break
        if p.failure is not None or confirming:
            break
        c = by_ttl.get(ttl)
        if p.silent and c is not None and not c.silent:
            gap += 1
        else:
            gap = 0
        if p.peer or gap >= limits.gap_limit:
            if ttl >= last:
                break
            ttl, confirming = last, True
            continue
        ttl += 1
    return Traces(control, target)


async def single(
    probe: Prober, ttl: int, role: str, *, budget: Budget, pacer: Pacer, worst_case: int
) -> Probe | None:
    """One probe within the budget and the rate (None: the budget refused it)."""
    if not budget.allows(worst_case):
        return None
    await pacer.wait()
    p = await probe(ttl, role)
    budget.spend(p.packets_sent)
    return p


def _trailing_silence(probes: list[Probe]) -> int:
    n = 0
    for p in reversed(probes):
        if not p.silent:
            break
        n += 1
    return n
