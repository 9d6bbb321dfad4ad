"""Stage times of a fetch, and the run baseline they are compared with (pure).

:func:`stage_sample` reads how long each stage of one HTTP round trip took from the events
the measurement holds (the connect and handshake of its connection, the request, the
``bytes_received_cumulative`` samples; :mod:`probe.analysis.samples` defines the shape).
The probe-side baseline accumulator (:mod:`probe.runfacts`) samples every finished target
with :func:`baseline_sample`, so the analysis and the probe read the same facts the same way.

:class:`Baseline` summarises the samples a measurement recorded in ``x_run_baseline``: the
medians of the connect, handshake and time-to-first-byte of the other targets of the run
(robust to a minority of slow or throttled ones), and ``capacity``, the best goodput any of
them sustained over a transfer large enough to measure one (a goodput can only be as high as
the volunteer's link delivered it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from probe.analysis.observations import HTTPObs, Observations
from probe.analysis.samples import StageSample

#: a baseline needs this many samples before the analysis trusts its medians ...
MIN_BASELINE = 3
#: ... and each stage's median this many samples that recorded that stage (a run mixes http
#: and https targets: a handshake median from two of three is still the link's)
MIN_STAGE = 2
#: a sample measures the link's goodput only over at least this many body bytes ...
CAPACITY_MIN_BYTES = 16384
#: ... received over at least this long (a transfer that fits one read measures nothing)
CAPACITY_MIN_SECONDS = 0.05


def _endpoint_times(obs: Observations, http: HTTPObs) -> tuple[float | None, float | None]:
    for e in obs.endpoints:
        if e.transaction_id == http.transaction_id and e.address == http.address:
            return e.tcp_time, e.tls_time
    return None, None


def stage_sample(obs: Observations, http: HTTPObs) -> StageSample | None:
    """The stage times of one round trip that got a response head, when the measurement
    recorded its progress samples (ours does; OONI's data has no ``network_events`` mostly)."""
    if http.status <= 0 or http.t0 is None:
        return None
    progress = [(t, n) for t, n in http.samples if n > 0]
    if not progress:
        return None
    (t_first, n_first), (t_last, n_last) = progress[0], progress[-1]
    if t_first < http.t0:
        return None
    tcp, tls = _endpoint_times(obs, http)
    return StageSample(
        tcp,
        tls,
        t_first - http.t0,
        max(n_last - n_first, 0),
        max(t_last - t_first, 0.0),
    )


def final_http(obs: Observations) -> HTTPObs | None:
    """The main flow's final round trip (newest first, as ``requests`` are stored)."""
    for h in obs.http:
        if h.main:
            return h
    return None


def baseline_sample(obs: Observations) -> StageSample | None:
    """What a finished target adds to the run baseline: the stage times of its final round
    trip, when that round trip completed (a failed fetch says nothing about the link)."""
    h = final_http(obs)
    if h is None or h.failure is not None:
        return None
    return stage_sample(obs, h)


#: read-only by convention, with a written-out ``__init__`` (see probe.analysis.observations)
@dataclass(slots=True, init=False)
class Baseline:
    n: int
    tcp_connect: float | None
    tls_handshake: float | None
    ttfb: float | None
    capacity: float | None  # bytes/s

    def __init__(
        self,
        n: int,
        tcp_connect: float | None,
        tls_handshake: float | None,
        ttfb: float | None,
        capacity: float | None,
    ) -> None:
        self.n = n
        self.tcp_connect = tcp_connect
        self.tls_handshake = tls_handshake
        self.ttfb = ttfb
        self.capacity = capacity

    def expected_latency(self, *, tls: bool) -> float | None:
        """Handshake (when ``tls``) plus time to first byte, as the other targets saw them."""
        if self.ttfb is None or (tls and self.tls_handshake is None):
            return None
        return self.ttfb + (self.tls_handshake or 0.0) if tls else self.ttfb


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if len(known) >= MIN_STAGE else None


def summarise(samples: Sequence[StageSample]) -> Baseline | None:
    """The baseline of ``samples``; None when there are fewer than :data:`MIN_BASELINE`."""
    if len(samples) < MIN_BASELINE:
        return None
    rates = [
        s.body_bytes / s.body_time
        for s in samples
        if s.body_time is not None
        and s.body_bytes >= CAPACITY_MIN_BYTES
        and s.body_time >= CAPACITY_MIN_SECONDS
    ]
    return Baseline(
        len(samples),
        _median([s.tcp_connect for s in samples]),
        _median([s.tls_handshake for s in samples]),
        _median([s.ttfb for s in samples]),
        max(rates) if rates else None,
    )
