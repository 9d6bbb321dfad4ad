"""Facts about the whole run, recorded in every web measurement so that each verdict can be
recomputed from the measurement alone (docs/verdicts.md, "Throttling" and "The control's own
failures").

- :class:`RunBaseline` accumulates the stage times of the targets already finished in this run
  (connect, handshake, time to first byte, body; :mod:`probe.analysis.samples`) and gives a
  snapshot of them as ``test_keys.x_run_baseline``: the volunteer's link as the other targets
  saw it. The samples are read by the same pure function the analysis uses
  (:func:`probe.analysis.timing.baseline_sample`).
- :func:`nxdomain_canary` resolves, once per run and with the system resolver (through the
  run's :class:`~probe.net.Network`), a random name that cannot exist, and gives what came back
  as ``test_keys.x_nxdomain_canary``: an address there means the resolver rewrites NXDOMAIN
  (search pages), which the analysis must not mistake for censorship of a dead name.
- :class:`RunFacts` holds both for one run. The session creates it once per run
  (:func:`for_run`) and hands it to every measurement in ``RunContext.run_facts`` (one object
  per run, owned by it: no global state). The web flow (:mod:`probe.experiment`) records
  :meth:`RunFacts.keys` in its measurement, then adds the finished measurement to the
  baseline: a measurement never counts itself.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from probe.analysis.observations import observe
from probe.analysis.samples import BASELINE_KEEP, BASELINE_VERSION, StageSample
from probe.analysis.timing import baseline_sample
from probe.config import Timeouts
from probe.net import TRIO, Network
from probe.stages import dns
from probe.trace import Trace

CANARY_VERSION: Final = 1
#: the canary's name is ``cp-<16 hex digits>.<suffix>``: a random label no list can contain
CANARY_PREFIX: Final = "cp-"
#: the suffix of the canary's name: a TLD every resolver knows, so that only the random label
#: can make the name not exist
CANARY_SUFFIX: Final = "com"


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
    net: Network = TRIO,
    suffix: str = CANARY_SUFFIX,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """``x_nxdomain_canary``: what the system resolver answers for a random name under
    ``suffix`` (one getaddrinfo lookup through ``net``, bounded by ``timeouts.dns``)."""
    rng = rng if rng is not None else random.SystemRandom()
    hostname = f"{CANARY_PREFIX}{rng.getrandbits(64):016x}.{suffix.strip('.')}"
    result = await dns.lookup_getaddrinfo(Trace(), hostname, timeouts=timeouts, net=net)
    return {
        "version": CANARY_VERSION,
        "hostname": hostname,
        "engine": "getaddrinfo",
        "failure": result.failure,
        "addresses": sorted(set(result.addresses)),
    }


@dataclass
class RunFacts:
    """One run's facts (see the module docstring)."""

    baseline: RunBaseline = field(default_factory=RunBaseline)
    canary: dict[str, Any] | None = None

    def keys(self, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
        """The test keys a measurement of this run records: ``x_run_baseline`` (``snapshot``,
        or the baseline as it is now) and ``x_nxdomain_canary``."""
        keys: dict[str, Any] = {
            "x_run_baseline": snapshot if snapshot is not None else self.baseline.snapshot()
        }
        if self.canary is not None:
            keys["x_nxdomain_canary"] = dict(self.canary)
        return keys


async def for_run(*, timeouts: Timeouts, net: Network = TRIO) -> RunFacts:
    """A new run's facts: an empty baseline and the canary, resolved now."""
    return RunFacts(canary=await nxdomain_canary(timeouts=timeouts, net=net))
