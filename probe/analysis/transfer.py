"""Throttling: the probe's body goodput against the control's (pure).

Inputs: the probe's ``bytes_received_cumulative`` samples for one HTTP transaction (t, bytes) and
the control's ``http_request.x_transfer`` (body_length, t_first_byte, t_done). A transfer is
called throttled only if ALL of these hold (the reasons are in docs/verdicts.md, "Throttling"):

1. the probe received data (a stall with zero bytes is a timeout, not a rate limit) over at
   least :data:`MIN_WINDOW` seconds;
2. probe goodput < :data:`RATIO` x control goodput (the control fetched the same URL);
3. probe goodput < :data:`FLOOR_BPS` (256 kbit/s): the Russian throttles observed capped at
   130-150 kbit/s (censorship-techniques.md 6), well under this floor, while even congested
   consumer lines rarely sustain less;
4. the body did not complete, or took at least :data:`SLOW_SECONDS` (the default HTTP timeout);
5. bytes kept arriving: the last progress sample lies in the second half of the time from the
   first byte to the end of the transaction, with at least two increments. A policer keeps a
   capped flow going until the timeout; a stall ("first packets pass, the rest is dropped",
   censorship-techniques.md 4) stops early and is reported as a body timeout instead. Samples
   are coarse (TLS records of 4-16 KiB complete in bursts), so a rate-ratio test between halves
   called real policed flows unsteady in the lab; progress-until-the-end is the robust signal.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.analysis.observations import ControlObs, HTTPObs

RATIO = 0.10
FLOOR_BPS = 256_000 / 8  # bytes per second
MIN_WINDOW = 2.0
SLOW_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Goodput:
    probe_bps: float | None
    control_bps: float | None
    window: float
    received: int
    steady: bool


def _rate(samples: tuple[tuple[float, int], ...]) -> float | None:
    if len(samples) < 2:
        return None
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    if t1 <= t0 or n1 < n0:
        return None
    return (n1 - n0) / (t1 - t0)


def goodput(http: HTTPObs, control: ControlObs) -> Goodput:
    s = http.samples
    rate = _rate(s)
    window = s[-1][0] - s[0][0] if len(s) >= 2 else 0.0
    received = s[-1][1] if s else 0
    increments = [b for a, b in zip(s, s[1:], strict=False) if b[1] > a[1]]
    end = http.t if http.t is not None else (s[-1][0] if s else 0.0)
    steady = (
        len(increments) >= 2
        and bool(s)
        and increments[-1][0] >= s[0][0] + 0.5 * max(end - s[0][0], 0.0)
    )
    cbps = None
    if control.transfer is not None:
        length, tfb, tdone = control.transfer
        if length > 0 and tdone >= tfb:
            cbps = length / max(tdone - tfb, 1e-3)
    return Goodput(rate, cbps, window, received, steady)


def is_throttled(http: HTTPObs, control: ControlObs) -> Goodput | None:
    """The goodput figures when the transfer meets every throttling condition, else None."""
    g = goodput(http, control)
    if g.probe_bps is None or g.control_bps is None or g.received <= 0:
        return None
    if g.window < MIN_WINDOW or not g.steady:
        return None
    if g.probe_bps >= RATIO * g.control_bps or g.probe_bps >= FLOOR_BPS:
        return None
    incomplete = http.failure is not None
    return g if incomplete or g.window >= SLOW_SECONDS else None
