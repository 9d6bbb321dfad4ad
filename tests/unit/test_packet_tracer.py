"""probe.packet.tracer: the stopping rules, the packet budget and the rate limit (docs/packet.md).

The tracer is handed its prober; here the prober answers from a described path (what each TTL
draws for the control and for the target) and takes virtual time, so the exact sequence of
probes and their start times are asserted under trio's autojump clock.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from probe.packet.probes import Probe
from probe.packet.spec import PacketLimits
from probe.packet.tracer import Budget, Pacer, Prober, Traces, trace_pair

#: what one TTL draws: "te" (a router's time exceeded), "peer" (a packet from the peer's
#: address), "both", "silent", or a failure string (the connection failed)
Path = Callable[[int, str], str]


Log = list[tuple[float, int, str]]


def _runner(path: Path, *, cost: int = 4, duration: float = 0.05) -> tuple[Log, Prober]:
    log: Log = []

    async def probe(ttl: int, role: str) -> Probe:
        start = trio.current_time()
        log.append((start, ttl, role))
        await trio.sleep(duration)
        what = path(ttl, role)
        failure = what if what not in ("te", "peer", "both", "silent") else None
        return Probe(
            ttl=ttl,
            role=role,
            key=("tcp", 40000 + ttl),
            t0=start,
            t=trio.current_time(),
            sent_at=start,
            closed_at=start + duration,
            failure=failure,
            packets_sent=cost,
            rtt=0.001,
            peer=what in ("peer", "both"),
            icmp=what in ("te", "both"),
        )

    return log, probe


async def _trace(path: Path, limits: PacketLimits | None = None) -> tuple[Traces, Log, Budget]:
    limits = limits or PacketLimits()
    log, probe = _runner(path)
    budget = Budget(limits.max_packets)
    traces = await trace_pair(
        probe,
        limits=limits,
        budget=budget,
        pacer=Pacer(limits.probes_per_second),
        worst_case=10,
    )
    return traces, log, budget


def _clean(length: int) -> Path:
    return lambda ttl, role: "peer" if ttl >= length else "te"


def _sequence(log: Log) -> list[tuple[int, str]]:
    return [(ttl, role[0]) for _, ttl, role in log]


async def test_a_clean_path_traces_both_to_the_server(autojump_clock: trio.abc.Clock) -> None:
    traces, log, budget = await _trace(_clean(4))
    assert _sequence(log) == [(t, "c") for t in range(1, 5)] + [(t, "t") for t in range(1, 5)]
    # one probe start every 1/5 s, from the first on
    starts = [t - log[0][0] for t, _, _ in log]
    assert starts == pytest.approx([i * 0.2 for i in range(8)], abs=1e-9)
    assert budget.spent == 32 and not budget.truncated
    assert [p.ttl for p in traces.target] == [1, 2, 3, 4]


async def test_an_answer_before_the_path_s_end_jumps_to_one_confirmation(
    autojump_clock: trio.abc.Clock,
) -> None:
    def path(ttl: int, role: str) -> str:
        if role == "target" and ttl >= 3:
            return "both"  # an on-path injector at hop 3: its RST and the router's ICMP
        return _clean(12)(ttl, role)

    _, log, _ = await _trace(path)
    assert _sequence(log)[12:] == [(1, "t"), (2, "t"), (3, "t"), (12, "t")]


async def test_a_drop_ends_after_the_gap_limit_and_one_confirmation(
    autojump_clock: trio.abc.Clock,
) -> None:
    def path(ttl: int, role: str) -> str:
        return "silent" if role == "target" and ttl >= 2 else _clean(10)(ttl, role)

    _, log, _ = await _trace(path)
    assert _sequence(log)[10:] == [(1, "t"), (2, "t"), (3, "t"), (4, "t"), (10, "t")]


async def test_a_silent_router_does_not_end_the_control(autojump_clock: trio.abc.Clock) -> None:
    def path(ttl: int, role: str) -> str:
        return "silent" if ttl in (2, 3) else _clean(6)(ttl, role)

    traces, _, _ = await _trace(path)
    assert [p.ttl for p in traces.control] == [1, 2, 3, 4, 5, 6]
    assert [p.ttl for p in traces.target] == [1, 2, 3, 4, 5, 6]


async def test_silence_to_the_end_stops_the_control(autojump_clock: trio.abc.Clock) -> None:
    traces, _, _ = await _trace(lambda ttl, role: "te" if ttl <= 2 else "silent")
    assert [p.ttl for p in traces.control] == [1, 2, 3, 4, 5]  # three silent TTLs in a row
    assert [p.ttl for p in traces.target] == [1, 2, 3, 4, 5]


async def test_no_connection_no_target_trace(autojump_clock: trio.abc.Clock) -> None:
    traces, log, _ = await _trace(lambda ttl, role: "connection_refused")
    assert _sequence(log) == [(1, "c")]
    assert traces.target == []


async def test_residual_blocking_ends_the_target_trace(autojump_clock: trio.abc.Clock) -> None:
    def path(ttl: int, role: str) -> str:
        if role == "target" and ttl == 2:
            return "peer"
        if role == "target" and ttl > 2:
            return "generic_timeout_error"
        return _clean(8)(ttl, role)

    traces, _, _ = await _trace(path)
    assert [(p.ttl, p.failure) for p in traces.target] == [
        (1, None),
        (2, None),
        (8, "generic_timeout_error"),
    ]


async def test_the_packet_cap_stops_before_a_probe_could_exceed_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    limits = PacketLimits(max_packets=45)
    traces, log, budget = await _trace(_clean(20), limits)
    assert budget.truncated
    assert budget.spent <= 45 and len(log) == 9  # 9 probes x 4 packets; a 10th could need 10
    assert [p.ttl for p in traces.control] == list(range(1, 10))


async def test_max_ttl_bounds_the_control(autojump_clock: trio.abc.Clock) -> None:
    traces, _, _ = await _trace(_clean(99), PacketLimits(max_ttl=5))
    assert [p.ttl for p in traces.control] == [1, 2, 3, 4, 5]
    assert [p.ttl for p in traces.target] == [1, 2, 3, 4, 5]
