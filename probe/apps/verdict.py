"""Pure: the verdict of one app measurement, recomputable from the stored facts.

:func:`analyze_app` returns the keys to merge into ``test_keys`` (idempotent: it reads only
facts, the plan ``x_app_hosts`` and the control answers ``x_app_control``):

- OONI's keys for whatsapp / telegram / signal / facebook_messenger (:mod:`probe.apps.ooni`);
- ``x_hosts``: one row per (host, port): ``id``, ``host``, ``port``, ``component``, the stage
  results ``dns`` / ``tcp`` / ``tls`` / ``http`` (``ok``, a failure, or null), ``http_status``,
  ``dns_consistent``, ``outcome``, ``blocking`` and what the ``control`` saw;
- ``x_app_verdict``: ``accessible``, ``blocked``, ``partially-blocked``, ``down`` or
  ``undetermined``; ``x_outcome`` (the first blocked row's outcome, ``ok``, or
  ``down/everywhere``), ``x_anomaly`` (OONI's anomaly rule, for the OONI tests),
  ``x_rule_id`` and ``x_rules_version``.

Outcome of a row (``stage/outcome``; the first stage that failed on the probe):
``dns/nxdomain``, ``dns/servfail``, ``dns/refused``, ``dns/no-answer``, ``dns/timeout``,
``dns/inconsistent``, ``dns/bogon`` (only bogon answers: never contacted), ``tcp/refused``,
``tcp/timeout``, ``tcp/reset``, ``tcp/host-unreachable``, ``tcp/network-unreachable``,
``tls/reset-after-clienthello``, ``tls/timeout``, ``tls/eof``, ``tls/unknown-authority``,
``tls/invalid-hostname``, ``tls/invalid-certificate``, ``http/reset``, ``http/timeout``,
``http/eof``, ``http/unexpected-status``, other failures as ``<stage>/<failure>``; ``ok``.

The control decides what a failure means (an app server outage is not censorship):
``blocking`` is true when the control got through the stage that failed on the probe, false with
outcome ``down/everywhere`` when the control failed at that stage (or before) too, and null when
the control gave no answer for it. App verdict, over the rows that count (``in_verdict``): any
blocked row -> ``blocked`` if every row that is not down is blocked, else
``partially-blocked``; otherwise any row failing without a control answer ->
``undetermined``; otherwise ``down`` if every row is down, else ``accessible``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from probe.apps.facts import OK, UNEXPECTED_STATUS, Control, Entry, entries
from probe.apps.ooni import OONI_KEYS, anomaly

APP_RULES_VERSION = "apps-verdict-1"
DOWN = "down/everywhere"
_STAGES = ("dns", "tcp", "tls", "http")

_SHORT = {
    "dns_nxdomain_error": "nxdomain",
    "dns_servfail_error": "servfail",
    "dns_refused_error": "refused",
    "dns_no_answer": "no-answer",
    "dns_bogon_error": "bogon",
    "generic_timeout_error": "timeout",
    "timed_out": "timeout",
    "connection_refused": "refused",
    "connection_reset": "reset",
    "eof_error": "eof",
    "host_unreachable": "host-unreachable",
    "network_unreachable": "network-unreachable",
    "ssl_unknown_authority": "unknown-authority",
    "ssl_invalid_hostname": "invalid-hostname",
    "ssl_invalid_certificate": "invalid-certificate",
    "ssl_failed_handshake": "failed-handshake",
    UNEXPECTED_STATUS: "unexpected-status",
}


def short_outcome(stage: str, failure: str) -> str:
    """``stage/outcome`` for a failure string at ``stage``."""
    if stage == "tls" and failure == "connection_reset":
        return "tls/reset-after-clienthello"
    if failure.startswith("unknown_failure"):
        return f"{stage}/unknown"
    return f"{stage}/{_SHORT.get(failure, failure)}"


def _probe_failure(e: Entry) -> tuple[str, str] | None:
    """(stage, failure) of the first stage that failed on the probe, or None if all went well."""
    if e.dns is not None and e.dns != OK:
        return "dns", e.dns
    if e.dns_consistent is False and not _control_agrees_with_answers(e):
        return "dns", "inconsistent"
    if e.stage == "dns":
        return None
    if e.tcp is None:
        if e.skipped:
            return "dns", "dns_bogon_error"
        return "tcp", "not_attempted"
    for stage, value in (("tcp", e.tcp), ("tls", e.tls), ("http", e.http)):
        if value is not None and value != OK:
            return stage, value
    return None


def _control_agrees_with_answers(e: Entry) -> bool:
    """The expected networks are stale if the control's answers fall outside them too."""
    c = e.control
    return c.dns == OK and bool(c.addrs) and set(e.addresses) <= set(c.addrs)


def _control_reached(c: Control, stage: str, e: Entry) -> bool | None:
    """True: the control got through ``stage``; False: it failed there or before; None: unknown."""
    if c.failure is not None or not c.asked:
        return None
    steps: list[str | None] = []
    if not _is_fixed(e):
        steps.append(c.dns)
    if stage in ("tcp", "tls", "http"):
        steps.append(c.tcp)
    if stage in ("tls", "http"):
        steps.append(c.tls if c.tls is not None else (c.http if e.plan.get("scheme") != "http"
                                                      else OK))  # fmt: skip
    if stage == "http":
        healthy = [s for s in e.plan.get("healthy_status") or [] if isinstance(s, int)]
        http = c.http
        if http == OK and healthy and c.http_status not in healthy:
            http = UNEXPECTED_STATUS
        steps.append(http)
    for value in steps:
        if value is None:
            return None
        if value != OK:
            return False
    return True


def _is_fixed(e: Entry) -> bool:
    return e.dns is None and e.stage != "dns"


def host_row(e: Entry) -> dict[str, Any]:
    """The ``x_hosts`` row of one entry."""
    failed = _probe_failure(e)
    blocking: bool | None
    if failed is None:
        outcome, blocking = OK, False
    else:
        stage, failure = failed
        outcome = short_outcome(stage, failure)
        reached = _control_reached(e.control, stage, e)
        if reached is True:
            blocking = True
        elif reached is False:
            outcome, blocking = DOWN, False
        else:
            blocking = None
    return {
        "id": e.host_id,
        "host": e.hostname,
        "port": e.port,
        "component": e.component,
        "in_verdict": e.in_verdict,
        "dns": e.dns,
        "dns_consistent": e.dns_consistent,
        "tcp": e.tcp,
        "tls": e.tls,
        "http": e.http,
        "http_status": e.http_status,
        "outcome": outcome,
        "blocking": blocking,
        "control": e.control.as_dict() if e.control.asked else None,
    }


def app_verdict(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """(x_app_verdict, x_outcome, rule id) over the rows that count."""
    counted = [r for r in rows if r.get("in_verdict", True)]
    if not counted:
        return "undetermined", "unknown/unknown", "apps.no-hosts"
    blocked = [r for r in counted if r["blocking"] is True]
    down = [r for r in counted if r["outcome"] == DOWN]
    unknown = [r for r in counted if r["blocking"] is None]
    if blocked:
        first = str(blocked[0]["outcome"])
        if len(blocked) + len(down) == len(counted):
            return "blocked", first, "apps.blocked"
        return "partially-blocked", first, "apps.partially-blocked"
    if unknown:
        return "undetermined", str(unknown[0]["outcome"]), "apps.no-control"
    if len(down) == len(counted):
        return "down", DOWN, "apps.down"
    return "accessible", OK, "apps.accessible"


def analyze_app(measurement: Mapping[str, Any]) -> dict[str, Any]:
    """Verdict keys for one app measurement (ours, or OONI's without our plan)."""
    test_name = str(measurement.get("test_name") or "")
    tk = measurement.get("test_keys")
    tk = tk if isinstance(tk, Mapping) else {}
    if not isinstance(tk.get("x_app_hosts"), list):
        return _from_ooni_keys(test_name, tk)
    found = entries(tk)
    out: dict[str, Any] = {}
    compute = OONI_KEYS.get(test_name)
    if compute is not None:
        out.update(compute(found))
    rows = [host_row(e) for e in found]
    verdict, outcome, rule = app_verdict(rows)
    out.update(
        {
            "x_hosts": rows,
            "x_app_verdict": verdict,
            "x_outcome": outcome,
            "x_anomaly": anomaly(test_name, out),
            "x_rule_id": rule,
            "x_rules_version": APP_RULES_VERSION,
        }
    )
    return out


def _from_ooni_keys(test_name: str, tk: Mapping[str, Any]) -> dict[str, Any]:
    """An OONI measurement without our plan: OONI's own anomaly rule, no per-host rows."""
    flag = anomaly(test_name, dict(tk))
    verdict = "undetermined" if flag is None else ("blocked" if flag else "accessible")
    return {
        "x_hosts": [],
        "x_app_verdict": verdict,
        "x_outcome": "ok" if flag is False else "unknown/unknown",
        "x_anomaly": flag,
        "x_rule_id": "apps.ooni-keys",
        "x_rules_version": APP_RULES_VERSION,
    }
