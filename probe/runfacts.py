"""Facts about the whole run, recorded in every measurement so that each verdict can be
recomputed from the measurement alone (docs/verdicts.md, "Throttling" and "The control's own
failures").

- :class:`RunBaseline` accumulates the stage times of the targets already finished in this run
  (connect, handshake, time to first byte, body; :mod:`probe.analysis.samples`) and gives a
  snapshot of them as ``test_keys.x_run_baseline``: the volunteer's link as the other targets
  saw it. The samples are read by the same pure function the analysis uses
  (:func:`probe.analysis.timing.baseline_sample`).
- :func:`nxdomain_canary` resolves, once per run and with the system resolver, a random name
  that cannot exist, and gives what came back as ``test_keys.x_nxdomain_canary``: an address
  there means the resolver rewrites NXDOMAIN (search pages), which the analysis must not
  mistake for censorship of a dead name.
- :class:`RunFacts` holds both for one run (one object per run, owned by it: no global
  state) and :meth:`RunFacts.attach` writes them into a finished measurement.

Nothing here touches the network but the one canary lookup. The run loop
(:mod:`probe.followup`, ``measure_with_run_facts``) attaches the facts to each measurement
before adding that measurement to the baseline, so a measurement never counts itself.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probe.analysis.observations import observe
from probe.analysis.samples import BASELINE_KEEP, BASELINE_VERSION, StageSample
from probe.analysis.timing import baseline_sample
from probe.config import Timeouts
from probe.stages import dns
from probe.trace import Trace

CANARY_VERSION = 1
#: the canary's name is ``cp-<16 hex digits>.<suffix>``: a random label no list can contain
CANARY_PREFIX = "cp-"


class RunBaseline:
    """The stage times of the run's finished targets (the most recent :data:`BASELINE_KEEP`)."""

    def __init__(self, *, keep: int = BASELINE_KEEP) -> None:
        self._samples: deque[StageSample] = deque(maxlen=keep)
        self._seen = 0

    def add(self, measurement: Mapping[str, Any]) -> StageSample | None:
        """Count one finished measurement; keep its sample when its final fetch completed."""
        self._seen += 1
        sample = baseline_sample(observe(measurement))
        if sample is not None:
            self._samples.append(sample)
        return sample

    def snapshot(self) -> dict[str, Any]:
        """``x_run_baseline``: the samples so far, oldest first (JSON-ready)."""
        return {
            "version": BASELINE_VERSION,
            "targets_seen": self._seen,
            "samples": [s.to_json() for s in self._samples],
        }


async def nxdomain_canary(
    *,
    timeouts: Timeouts,
    suffix: str = "com",
    rng: random.Random | None = None,
    getaddrinfo: Any = None,
) -> dict[str, Any]:
    """``x_nxdomain_canary``: what the system resolver answers for a random name under
    ``suffix`` (one getaddrinfo lookup, bounded by ``timeouts.dns``)."""
    rng = rng if rng is not None else random.SystemRandom()
    hostname = f"{CANARY_PREFIX}{rng.getrandbits(64):016x}.{suffix.strip('.')}"
    kwargs = {} if getaddrinfo is None else {"getaddrinfo": getaddrinfo}
    result = await dns.lookup_getaddrinfo(Trace(), hostname, timeouts=timeouts, **kwargs)
    return {
        "version": CANARY_VERSION,
        "hostname": hostname,
        "engine": "getaddrinfo",
        "failure": result.failure,
        "addresses": sorted(set(result.addresses)),
    }


@dataclass
class RunFacts:
    """One run's facts; :meth:`attach` writes them into a measurement of that run."""

    baseline: RunBaseline = field(default_factory=RunBaseline)
    canary: dict[str, Any] | None = None

    def attach(self, measurement: dict[str, Any]) -> None:
        tk = measurement.setdefault("test_keys", {})
        tk["x_run_baseline"] = self.baseline.snapshot()
        if self.canary is not None:
            tk["x_nxdomain_canary"] = dict(self.canary)
