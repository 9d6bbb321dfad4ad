"""Throttling from every clue (pure): stage times, the control, the run baseline, the follow-up.

A throttled site whose page is a few kilobytes finishes before a goodput can be measured, so
the goodput rule of :mod:`probe.analysis.transfer` misses it. The facts still show it: the
handshake and the first bytes take seconds where the control took milliseconds, while the other
targets of the same run, over the same link, were fast. The clues, each a recorded fact:

1. **stage times** of the final round trip (:func:`probe.analysis.timing.stage_sample`):
   TCP connect (one round trip of the path), TLS handshake, time to first byte, body;
2. **the control's** ``http_request.x_transfer``: its time to first byte and body time, and
   (helpers since 2026-12) ``t_connect`` / ``t_tls``, its own connect and handshake;
3. **the run baseline** ``test_keys.x_run_baseline`` (:mod:`probe.analysis.samples`): the
   same stage times of the other targets of the run, and the link capacity they showed;
4. **the follow-up** (``x_diag=throughput``): for a suspect target the probe fetches the same
   URL again with a Range request for up to 256 KiB, under the same SNI/Host from the same
   address, and records its progress: a goodput measured on purpose, plus an innocuous-SNI
   handshake to the same address (``x_diag=throughput_sni``).

:func:`latency_excess` (clues 1-3), :func:`follow_up_goodput` (4), :func:`baseline_vetoes`
(a slow transfer as slow as the link itself is no throttling) and :func:`slow_link` give the
rules their facts; :func:`suspect` is the cheaper test the probe uses to decide whether a
target deserves a follow-up, and :func:`follow_up_plan` where that follow-up goes. The
thresholds and why: docs/verdicts.md, "Throttling".
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.analysis.observations import ControlObs, EndpointObs, HTTPObs, Observations
from probe.analysis.samples import StageSample
from probe.analysis.timing import Baseline, final_http, stage_sample, summarise
from probe.analysis.transfer import FLOOR_BPS, MIN_WINDOW, RATIO, goodput
from probe.netaddr import parse_ip, split_endpoint
from probe.vocabulary import TIMEOUT

#: a stage is "slow" when it takes this many times what the baseline and the control took ...
SLOW_FACTOR = 5.0
#: ... and at least this many seconds more than the baseline (small absolute delays are noise)
MIN_EXCESS = 1.0
#: the path itself is normal when the target's TCP connect is within this factor of the
#: baseline's (or within RTT_SLACK seconds of it): IP-level congestion or a far server
#: slows the connect too, SNI- or Host-triggered throttling does not
RTT_FACTOR = 3.0
RTT_SLACK = 0.2
#: a transfer at or above this share of the link capacity shown by the other targets is the
#: link's normal speed (they ran concurrently, sharing the link the same way)
BASELINE_RATIO = 0.25
#: the probe asks for a follow-up at a lower bar than the verdict's
SUSPECT_FACTOR = 3.0
SUSPECT_EXCESS = 0.5
#: an innocuous-SNI handshake this many times faster than the real one ties the slowness to
#: the name
SNI_FACTOR = 5.0


def run_baseline(obs: Observations) -> Baseline | None:
    return summarise(obs.baseline) if obs.baseline is not None else None


def final_sample(obs: Observations) -> tuple[HTTPObs, StageSample] | None:
    h = final_http(obs)
    if h is None:
        return None
    s = stage_sample(obs, h)
    return None if s is None else (h, s)


def _control_latency(control: ControlObs) -> float | None:
    if control.transfer is None:
        return None
    _, t_first_byte, _ = control.transfer
    return t_first_byte + (control.transfer_tls or 0.0)


def _path_normal(sample: StageSample, baseline: Baseline) -> bool:
    if sample.tcp_connect is None or baseline.tcp_connect is None:
        return False
    limit = max(RTT_FACTOR * baseline.tcp_connect, baseline.tcp_connect + RTT_SLACK)
    return sample.tcp_connect <= limit


@dataclass(frozen=True, slots=True)
class LatencyExcess:
    observed: float  # handshake + first byte (+ body, when the link capacity is known)
    expected: float  # the same from the baseline
    control: float  # the control's handshake (when it says) + first byte
    http: HTTPObs


def latency_excess(
    obs: Observations, *, factor: float = SLOW_FACTOR, excess: float = MIN_EXCESS
) -> LatencyExcess | None:
    """The final round trip's handshake and first byte (and body, when the baseline knows the
    link's capacity) took ``factor`` times what the other targets of the run and the control
    took, and ``excess`` seconds more than the others, over a path whose round trip is normal.
    None when any of those facts is missing or does not hold."""
    found = final_sample(obs)
    baseline = run_baseline(obs)
    control = _control_latency(obs.control)
    if found is None or baseline is None or control is None:
        return None
    http, sample = found
    times = _observed_expected(sample, baseline)
    if times is None or not _path_normal(sample, baseline):
        return None
    observed, expected = times
    if observed < factor * max(expected, control) or observed - expected < excess:
        return None
    if follow_up_exonerates(obs):
        return None
    return LatencyExcess(observed, expected, control, http)


def _observed_expected(sample: StageSample, baseline: Baseline) -> tuple[float, float] | None:
    """(observed, expected) seconds of a fetch: handshake plus first byte, plus the body when
    the baseline knows the link's capacity (then the body is expected to take its size over
    that capacity). None without the stage times to compare."""
    expected = baseline.expected_latency(tls=sample.tls_handshake is not None)
    observed = sample.latency
    if expected is None or observed is None:
        return None
    if baseline.capacity and sample.body_time is not None:
        observed += sample.body_time
        expected += sample.body_bytes / baseline.capacity
    return observed, expected


def follow_up_exonerates(obs: Observations) -> bool:
    """The follow-up (same SNI/Host, same address) did not reproduce the slowness: its stage
    times, measured as :func:`latency_excess` measures the fetch's, were as fast as the
    baseline expects, or its transfer ran above the goodput floor or at the link's own
    speed. The slow first fetch was a passing delay."""
    baseline = run_baseline(obs)
    for h in obs.http:
        if h.diag != "throughput" or h.status <= 0:
            continue
        sample = stage_sample(obs, h)
        times = None if baseline is None or sample is None else _observed_expected(sample, baseline)
        if times is not None:
            observed, expected = times
            if observed < SLOW_FACTOR * expected or observed - expected < MIN_EXCESS:
                return True
        g = goodput(h, obs.control)
        if g.probe_bps is None or g.window < MIN_WINDOW:
            continue
        if g.probe_bps >= FLOOR_BPS:
            return True
        if baseline is not None and baseline.capacity:
            if g.probe_bps >= BASELINE_RATIO * baseline.capacity:
                return True
    return False


@dataclass(frozen=True, slots=True)
class FollowUp:
    http: HTTPObs
    bps: float
    reference: str  # "x_run_baseline" | "control.http_request.x_transfer"
    sni_probe: EndpointObs | None


def _follow_up_sni(obs: Observations, http: HTTPObs) -> tuple[EndpointObs | None, bool]:
    """The innocuous-SNI handshake of the follow-up, and whether it was :data:`SNI_FACTOR`
    times faster than the real-SNI handshake of the follow-up's own connection."""
    real = next(
        (e for e in obs.endpoints if e.transaction_id == http.transaction_id and e.diag), None
    )
    probe = next(
        (e for e in obs.endpoints if e.diag == "throughput_sni" and e.address == http.address),
        None,
    )
    if probe is None or real is None or probe.tls_time is None or real.tls_time is None:
        return probe, False
    return probe, probe.tls_ok and probe.tls_time * SNI_FACTOR <= real.tls_time


def follow_up_goodput(obs: Observations) -> FollowUp | None:
    """The follow-up transfer kept flowing for at least ``MIN_WINDOW`` seconds at a goodput
    under ``FLOOR_BPS`` and under :data:`BASELINE_RATIO` of the link capacity the other
    targets showed; without a capacity, under ``RATIO`` of the control's goodput, with the
    innocuous-SNI handshake to the same address much faster than the real one."""
    baseline = run_baseline(obs)
    for h in obs.http:
        if h.diag != "throughput" or h.status <= 0:
            continue
        g = goodput(h, obs.control)
        if g.probe_bps is None or g.window < MIN_WINDOW or not g.steady:
            continue
        if g.probe_bps >= FLOOR_BPS:
            continue
        sni, sni_fast = _follow_up_sni(obs, h)
        if baseline is not None and baseline.capacity:
            if g.probe_bps < BASELINE_RATIO * baseline.capacity:
                return FollowUp(h, g.probe_bps, "x_run_baseline", sni)
            continue
        if g.control_bps and g.probe_bps < RATIO * g.control_bps and sni_fast:
            return FollowUp(h, g.probe_bps, "control.http_request.x_transfer", sni)
    return None


def baseline_vetoes(obs: Observations, http: HTTPObs) -> bool:
    """The transfer ran at the link's own speed: at least :data:`BASELINE_RATIO` of the best
    goodput the other targets of the run sustained (only when the baseline knows one)."""
    baseline = run_baseline(obs)
    if baseline is None or not baseline.capacity:
        return False
    g = goodput(http, obs.control)
    return g.probe_bps is not None and g.probe_bps >= BASELINE_RATIO * baseline.capacity


def slow_link(obs: Observations, http: HTTPObs) -> bool:
    """Headers arrived, the body kept flowing until the HTTP timeout, at the link's own speed:
    the page is too large for the volunteer's link in our time budget, not interfered with."""
    if http.status <= 0 or http.failure not in TIMEOUT:
        return False
    g = goodput(http, obs.control)
    return g.steady and g.window >= MIN_WINDOW and baseline_vetoes(obs, http)


def suspect(obs: Observations) -> list[str]:
    """Why the final fetch deserves a throughput follow-up ([] when it does not). Only with a
    usable run baseline (a slow link would otherwise send every page to a follow-up): its
    stage times exceed the baseline's (a lower bar than the verdict's), or it kept flowing for
    ``MIN_WINDOW`` seconds under the goodput floor and a quarter of the link's capacity. The
    probe calls this on the facts it has."""
    baseline = run_baseline(obs)
    if baseline is None:
        return []
    reasons = []
    if latency_excess(obs, factor=SUSPECT_FACTOR, excess=SUSPECT_EXCESS) is not None:
        reasons.append("stage_times")
    h = final_http(obs)
    if h is not None and h.status > 0:
        g = goodput(h, obs.control)
        slow = g.probe_bps is not None and g.probe_bps < FLOOR_BPS
        if slow and baseline.capacity and g.probe_bps is not None:
            slow = g.probe_bps < BASELINE_RATIO * baseline.capacity
        if slow and g.steady and g.window >= MIN_WINDOW:
            reasons.append("goodput")
    return reasons


@dataclass(frozen=True, slots=True)
class FollowUpPlan:
    """Where a suspect target's follow-up goes: the final response's URL, address and name
    (the SNI and Host of the follow-up), and why it is suspect."""

    url: str
    ip: str
    port: int
    server_name: str
    depth: int
    reasons: tuple[str, ...]


def follow_up_plan(obs: Observations) -> FollowUpPlan | None:
    """The follow-up the facts call for (:func:`suspect`), or None."""
    reasons = suspect(obs)
    final = final_http(obs)
    if not reasons or final is None:
        return None
    try:
        ip, port = split_endpoint(final.address)
    except ValueError:
        return None
    if parse_ip(ip) is None:
        return None
    return FollowUpPlan(final.url, ip, port, final.host, final.depth, tuple(reasons))
