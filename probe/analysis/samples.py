"""Stage timings of one fetch, and the run baseline built from them (pure; the JSON shape).

A :class:`StageSample` is how long each stage of one successful fetch took, in seconds, read
from the events a measurement already holds (docs/verdicts.md, "Throttling"):

- ``tcp_connect``: the TCP connect of the connection that carried the final response
  (``tcp_connect[i].t - t0``): one round trip of the path;
- ``tls_handshake``: the TLS handshake on that connection (``tls_handshakes[i].t - t0``),
  ``None`` over cleartext;
- ``ttfb``: from the request (``requests[i].t0``) to the first bytes of the response (the
  first ``bytes_received_cumulative`` network event of the transaction);
- ``body_bytes`` / ``body_time``: bytes received after those first bytes, and the time from
  the first to the last sample (the transfer after the first read).

The probe records, in every measurement, the samples of the other targets of its run as
``test_keys.x_run_baseline`` (:data:`BASELINE_VERSION`)::

    {"version": 1, "targets_seen": 57,
     "samples": [{"tcp_connect": 0.012, "tls_handshake": 0.031, "ttfb": 0.048,
                  "body_bytes": 48211, "body_time": 0.09}, ...]}

``samples`` are the most recent successful fetches of the run before this measurement ended
(at most :data:`BASELINE_KEEP`, oldest first); ``targets_seen`` counts every finished target,
sampled or not. No URL and no address: numbers only. The analysis recomputes its medians from
the samples, so a verdict can be recomputed from the measurement alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.analysis.values import as_dict, as_float, as_int, as_list

BASELINE_VERSION = 1
#: how many samples a baseline keeps (the most recent ones)
BASELINE_KEEP = 32


#: read-only by convention, with a written-out ``__init__`` (see probe.analysis.observations)
@dataclass(slots=True, init=False)
class StageSample:
    tcp_connect: float | None
    tls_handshake: float | None
    ttfb: float | None
    body_bytes: int
    body_time: float | None

    def __init__(
        self,
        tcp_connect: float | None,
        tls_handshake: float | None,
        ttfb: float | None,
        body_bytes: int,
        body_time: float | None,
    ) -> None:
        self.tcp_connect = tcp_connect
        self.tls_handshake = tls_handshake
        self.ttfb = ttfb
        self.body_bytes = body_bytes
        self.body_time = body_time

    @property
    def latency(self) -> float | None:
        """Handshake plus time to first byte: the part of a fetch that does not grow with the
        size of the page."""
        if self.ttfb is None:
            return None
        return self.ttfb + (self.tls_handshake or 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "tcp_connect": _round(self.tcp_connect),
            "tls_handshake": _round(self.tls_handshake),
            "ttfb": _round(self.ttfb),
            "body_bytes": self.body_bytes,
            "body_time": _round(self.body_time),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _seconds(value: object) -> float | None:
    f = as_float(value)
    return f if f is not None and 0.0 <= f < 1e6 else None


def parse_sample(raw: object) -> StageSample | None:
    """One sample of ``x_run_baseline.samples``; None when it carries no usable time."""
    d = as_dict(raw)
    ttfb = _seconds(d.get("ttfb"))
    if ttfb is None:
        return None
    body_bytes = as_int(d.get("body_bytes"))
    return StageSample(
        _seconds(d.get("tcp_connect")),
        _seconds(d.get("tls_handshake")),
        ttfb,
        body_bytes if body_bytes is not None and body_bytes >= 0 else 0,
        _seconds(d.get("body_time")),
    )


def parse_baseline(raw: object) -> tuple[StageSample, ...] | None:
    """The samples of ``test_keys.x_run_baseline``; None when the key is absent or unusable
    (a version we do not know, no ``samples`` list): the measurement recorded no baseline."""
    d = as_dict(raw)
    if not d or as_int(d.get("version")) != BASELINE_VERSION:
        return None
    samples = d.get("samples")
    if not isinstance(samples, list):
        return None
    out = []
    for item in as_list(samples):
        s = parse_sample(item)
        if s is not None:
            out.append(s)
    return tuple(out)
