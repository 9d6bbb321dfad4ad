"""The verdict of one measurement, re-derived with the current rules (pure).

Every test the probe knows is analysed by the engine its registry entry names
(:mod:`probe.registry`): Web Connectivity (v0.4, v0.5, ours) by ``probe.analysis.analyze``,
the app tests (OONI's four, and our ``app_endpoints``) by ``probe.apps.verdict.analyze_app``,
the same functions ``probe run`` and ``probe analyze --stdin`` use, so the batch dataset always
says what today's rules say about old data. Other tests (dnscheck, urlgetter, tor, ...) get no
verdict. An exception inside an analysis is an edge case of the data: it is recorded in
``verdict_error`` and the verdict stays null; it never stops the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from probe import registry

#: what ``verdict_source`` says about where a verdict came from (an engine's name otherwise)
SOURCE_NONE = "none"
SOURCE_ERROR = "error"

#: the registry's tests by name, read once (a compiled dict lookup per measurement)
_TESTS: Final[dict[str, registry.ExperimentSpec]] = dict(registry.BY_NAME)

VERDICT_KEYS = (
    "blocking",
    "accessible",
    "anomaly",
    "outcome",
    "rule_id",
    "rules_version",
    "fingerprint_id",
    "verdict_source",
    "verdict_error",
)


def derive_verdict(
    measurement: Mapping[str, Any],
    *,
    fingerprints: Any = None,
    public_ranges: Sequence[Any] = (),
) -> dict[str, Any]:
    """Verdict columns for one parsed measurement (see ``VERDICT_KEYS``)."""
    name = measurement.get("test_name")
    test = _TESTS.get(name) if type(name) is str else None
    if test is None:
        return dict.fromkeys(VERDICT_KEYS) | {"verdict_source": SOURCE_NONE}
    try:
        keys: Mapping[str, Any] = test.analyze(
            measurement, fingerprints=fingerprints, public_ranges=public_ranges
        )
        v = test.verdict(keys)
    except Exception as exc:  # noqa: BLE001 - a bad measurement must not stop the batch
        return dict.fromkeys(VERDICT_KEYS) | {
            "verdict_source": SOURCE_ERROR,
            "verdict_error": f"{type(exc).__name__}: {exc}"[:300],
        }
    return {
        "blocking": v.blocking,
        "accessible": v.accessible,
        "anomaly": v.anomaly,
        "outcome": v.outcome,
        "rule_id": v.rule_id,
        "rules_version": v.rules_version,
        "fingerprint_id": v.fingerprint_id,
        "verdict_source": test.engine,
        "verdict_error": None,
    }
