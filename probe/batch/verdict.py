"""The verdict of one measurement, re-derived with the current rules (pure).

Web Connectivity (v0.4 and v0.5, and our own probe's output) goes through
``probe.analysis.analyze``, the same function the probe and ``probe analyze FILE`` use, so the
batch dataset always says what today's rules say about old data. The app tests keep OONI's own
verdict logic (``probe.batch.apps``). Other tests (dnscheck, urlgetter, tor, ...) get no verdict.
An exception inside the analysis is an edge case of the data: it is recorded in
``verdict_error`` and the verdict stays null; it never stops the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from probe.analysis import analyze
from probe.batch.apps import APP_TESTS, app_verdict

#: what ``verdict_source`` says about where a verdict came from
SOURCE_ANALYSIS = "analysis"
SOURCE_APPS = "apps"
SOURCE_NONE = "none"
SOURCE_ERROR = "error"

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


def blocking_text(value: Any) -> str | None:
    """OONI's ``blocking`` (false, a string, or null) as one nullable string column."""
    if value is False:
        return "false"
    if isinstance(value, str) and value:
        return value
    return None


def _is_anomaly(blocking: str | None) -> bool | None:
    if blocking is None:
        return None
    return blocking != "false"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def derive_verdict(
    measurement: Mapping[str, Any],
    *,
    fingerprints: Any = None,
    public_ranges: Sequence[Any] = (),
) -> dict[str, Any]:
    """Verdict columns for one parsed measurement (see ``VERDICT_KEYS``)."""
    test_name = measurement.get("test_name")
    test_keys = measurement.get("test_keys")
    empty: dict[str, Any] = dict.fromkeys(VERDICT_KEYS)
    if test_name in APP_TESTS:
        if type(test_keys) is not dict and not isinstance(test_keys, Mapping):
            return empty | {"verdict_source": SOURCE_ERROR, "verdict_error": "test_keys missing"}
        app = app_verdict(str(test_name), test_keys)
        return empty | {
            "blocking": blocking_text(app["blocking"]),
            "accessible": app["accessible"],
            "anomaly": app["anomaly"],
            "outcome": app["x_outcome"],
            "rule_id": app["x_rule_id"],
            "rules_version": app["x_rules_version"],
            "verdict_source": SOURCE_APPS,
        }
    if test_name != "web_connectivity":
        return empty | {"verdict_source": SOURCE_NONE}
    try:
        v: Mapping[str, Any] = analyze(
            measurement, fingerprints=fingerprints, public_ranges=public_ranges
        )
    except Exception as exc:  # noqa: BLE001 - a bad measurement must not stop the batch
        return empty | {
            "verdict_source": SOURCE_ERROR,
            "verdict_error": f"{type(exc).__name__}: {exc}"[:300],
        }
    blocking = blocking_text(v.get("blocking"))
    accessible = v.get("accessible")
    return empty | {
        "blocking": blocking,
        "accessible": accessible if isinstance(accessible, bool) else None,
        "anomaly": _is_anomaly(blocking),
        "outcome": _text(v.get("x_outcome")),
        "rule_id": _text(v.get("x_rule_id")),
        "rules_version": _text(v.get("x_rules_version")),
        "fingerprint_id": _text(v.get("x_fingerprint_id")),
        "verdict_source": SOURCE_ANALYSIS,
    }
