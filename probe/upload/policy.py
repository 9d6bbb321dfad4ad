"""How uploads behave: the timeouts and the backoff, in one frozen object (no literal seconds
elsewhere in the upload code), and the backoff delay as a pure function.

Backoff: after the ``n``-th consecutive failure (``n`` from 1) the sender waits
``min(max_delay, base_delay * 2**(n-1))`` scaled by a random factor in ``[1 - jitter, 1]``
("equal jitter" would leave many probes in lock step after a collector outage; a full-range
factor spreads them). A ``Retry-After`` from the collector is honoured when longer. After
``max_failures`` consecutive failures the sender gives up for this run: the lines stay in the
outbox for the next one.

The config file's ``[upload]`` table may override any field (:func:`policy_from_config`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from probe import inputs


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    #: TCP connect (plus proxy handshake and TLS), seconds: Tor circuits can be slow
    connect_timeout: float = 30.0
    #: one whole request (open, submit or close), seconds
    request_timeout: float = 60.0
    #: first backoff delay and the largest one, seconds
    base_delay: float = 1.0
    max_delay: float = 300.0
    #: fraction of each delay that is random (0: none, 1: anywhere in [0, delay])
    jitter: float = 0.5
    #: consecutive failures after which a drain stops (the lines wait for the next run)
    max_failures: int = 8
    #: submissions in flight at once
    parallel: int = 4
    #: acknowledged lines recorded per outbox transaction (one fsync)
    ack_batch: int = 64


#: the range of each field in the config file (finite numbers only: probe.inputs.number)
_BOUNDS: dict[str, tuple[float, float]] = {
    "connect_timeout": (0.0, inputs.MAX_SECONDS),
    "request_timeout": (0.0, inputs.MAX_SECONDS),
    "base_delay": (0.0, inputs.MAX_SECONDS),
    "max_delay": (0.0, inputs.MAX_SECONDS),
    "jitter": (0.0, 1.0),
    "max_failures": (1, 1000),
    "parallel": (1, 64),
    "ack_batch": (1, 10_000),
}
#: fields that must be more than their minimum (a timeout of 0 would fail every request)
_MORE_THAN_ZERO = frozenset({"connect_timeout", "request_timeout"})


def backoff_delay(
    failures: int,
    *,
    policy: UploadPolicy,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``)."""
    exponent = min(max(failures, 1) - 1, 62)
    ceiling = min(policy.max_delay, policy.base_delay * (2.0**exponent))
    delay = ceiling * (1.0 - policy.jitter * rng.random())
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, policy.max_delay)
    return max(delay, 0.0)


def policy_from_config(cfg: Mapping[str, Any]) -> UploadPolicy:
    """The policy with the config file's ``[upload]`` overrides (e.g. longer timeouts for a
    slow Tor circuit); raises ValueError (:class:`probe.inputs.InputError`) naming a bad key:
    not a number, not finite (TOML has ``nan`` and ``inf``), or out of its range."""
    table = cfg.get("upload", {})
    if not isinstance(table, Mapping):
        raise ValueError("config file: upload must be a table")
    changes: dict[str, Any] = {}
    for spec in fields(UploadPolicy):
        if spec.name not in table:
            continue
        low, high = _BOUNDS[spec.name]
        integer = spec.type in ("int", int)
        value = inputs.number(
            table[spec.name],
            name=f"config file: upload.{spec.name}",
            minimum=low,
            maximum=high,
            integer=integer,
            exclusive_minimum=spec.name in _MORE_THAN_ZERO,
            text=False,
        )
        changes[spec.name] = int(value) if integer else float(value)
    unknown = set(table) - {spec.name for spec in fields(UploadPolicy)}
    if unknown:
        raise ValueError(f"config file: unknown upload.{sorted(unknown)[0]}")
    return replace(UploadPolicy(), **changes)
