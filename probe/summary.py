"""What an analysed measurement says in short, the same for every test (pure).

Each test's verdict engine (declared in :mod:`probe.registry`) turns the verdict keys it wrote
into a :class:`Verdict`. The run's summary line (:class:`SummaryRow`, :func:`summary_row`) and
the batch's verdict columns are both read from it, so ``probe run`` and ``probe analyze`` can
never tell two stories about one measurement.

``blocking`` is OONI's ``blocking`` as one nullable text (``"false"``, ``"dns"``,
``"tcp_ip"``, ``"http-failure"``, ``"http-diff"``; for the app tests the blocked components,
comma-joined), None when unknown. ``label`` is the summary's word: ``accessible``,
``blocked (<blocking>)``, ``down``, ``undetermined`` (web); the app verdict (apps).
This module is compiled with the analysis (probe.native): plain slotted classes with a
written-out ``__init__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from probe.vocabulary import CONNECTION_STAGES, Stage, outcome_stage


@dataclass(slots=True, init=False)
class Verdict:
    """The short form of one measurement's verdict (read-only by convention)."""

    blocking: str | None
    accessible: bool | None
    anomaly: bool | None
    outcome: str | None
    rule_id: str | None
    rules_version: str | None
    fingerprint_id: str | None
    #: the summary's verdict word(s)
    label: str

    def __init__(
        self,
        blocking: str | None,
        accessible: bool | None,
        anomaly: bool | None,
        outcome: str | None,
        rule_id: str | None,
        rules_version: str | None,
        fingerprint_id: str | None,
        label: str,
    ) -> None:
        self.blocking = blocking
        self.accessible = accessible
        self.anomaly = anomaly
        self.outcome = outcome
        self.rule_id = rule_id
        self.rules_version = rules_version
        self.fingerprint_id = fingerprint_id
        self.label = label


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One line of the run's summary table."""

    url: str
    stage: str
    verdict: str
    outcome: str


def blocking_text(value: Any) -> str | None:
    """OONI's ``blocking`` (false, a string, or null) as one nullable string."""
    if value is False:
        return "false"
    if isinstance(value, str) and value:
        return value
    return None


def target_label(measurement: Mapping[str, Any]) -> str:
    """What the summary calls the target: the input, else ``app:<app or test name>``."""
    value = measurement.get("input")
    if isinstance(value, str):
        return value
    tk = measurement.get("test_keys")
    app = tk.get("x_app") if isinstance(tk, Mapping) else None
    return f"app:{app if isinstance(app, str) else measurement.get('test_name')}"


_EVENT_STAGES = (
    ("tcp_connect", Stage.TCP.value),
    ("tls_handshakes", Stage.TLS.value),
    ("requests", Stage.HTTP.value),
)


def failed_stage(test_keys: Mapping[str, Any]) -> str:
    """The first step at which every attempt failed (facts only, diagnostics aside), or ""."""
    if test_keys.get("dns_experiment_failure"):
        return Stage.DNS.value
    for key, stage in _EVENT_STAGES:
        events = test_keys.get(key)
        failures = [
            (e.get("status") or {}).get("failure") if key == "tcp_connect" else e.get("failure")
            for e in (events if isinstance(events, list) else [])
            if isinstance(e, Mapping)
            and not any(str(t).startswith("x_diag=") for t in e.get("tags") or [])
        ]
        if failures and all(failures):
            return stage
    return ""


def summary_row(measurement: Mapping[str, Any], verdict: Verdict) -> SummaryRow:
    """The summary line of a measurement: its stage is the outcome's, or (for outcomes that
    name no stage, such as ``down/everywhere``) the first step that failed everywhere."""
    outcome = verdict.outcome or ""
    stage = outcome_stage(outcome)
    if stage not in CONNECTION_STAGES:
        tk = measurement.get("test_keys")
        reached = verdict.accessible is True and verdict.anomaly is not True
        stage = failed_stage(tk) if isinstance(tk, Mapping) and not reached else ""
    return SummaryRow(
        url=target_label(measurement), stage=stage, verdict=verdict.label, outcome=outcome
    )
