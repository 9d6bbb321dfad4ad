"""Pure: the ONE verdict engine of the app tests, a rule table with stable ids (as the web's).

:func:`analyze_app` reads one app measurement, ours (with the plan ``x_app_hosts`` and the
control answers ``x_app_control``) or OONI's (whatsapp, telegram, signal, facebook_messenger
without our plan), and returns the keys to merge into ``test_keys`` (idempotent: it reads only
facts, the plan and the control answers):

- OONI's keys for whatsapp / telegram / signal / facebook_messenger, recomputed from our facts
  (:mod:`probe.apps.ooni`; an OONI measurement keeps its own);
- ``x_hosts`` (ours only): one row per (host, port): ``id``, ``host``, ``port``,
  ``component``, the stage results ``dns`` / ``tcp`` / ``tls`` / ``http`` (``ok``, a failure,
  or null), ``http_status``, ``dns_consistent``, ``outcome``, ``blocking`` and what the
  ``control`` saw;
- ``x_app_verdict`` (:class:`~probe.vocabulary.AppVerdict`), ``x_outcome``, ``x_blocking``
  (the blocked host ids, or OONI's blocked components for OONI's data), ``x_anomaly`` (OONI's
  anomaly rule, for the OONI tests), ``x_rule_id``, ``x_rules_version``.

A row's outcome is :func:`probe.vocabulary.stage_outcome` of the first stage that failed on
the probe (the same words as the web verdicts: ``tcp/refused`` is a RST to the SYN,
``tls/reset-after-clienthello``, ``dns/inconsistent`` ...). The control decides what a failure
means (an app server outage is not censorship): the row is blocking when the control got
through the stage that failed on the probe, ``down/everywhere`` when the control failed at that
stage (or before) too, unknown without a control answer for it.

The app verdict is the first rule of :data:`APP_RULES` whose predicate matches
(docs/apps.md lists them); ``x_rule_id`` names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe.apps.facts import OK, Control, Entry, entries
from probe.apps.ooni import OONI_KEYS, anomaly, blocked_components, status_known
from probe.summary import Verdict
from probe.vocabulary import (
    INCONSISTENT,
    NOT_ATTEMPTED,
    UNEXPECTED_STATUS,
    AppVerdict,
    Evidence,
    Failure,
    Outcome,
    Stage,
    stage_outcome,
)

APP_RULES_VERSION = "apps-2"

_DNS, _TCP, _TLS, _HTTP = Stage.DNS.value, Stage.TCP.value, Stage.TLS.value, Stage.HTTP.value


# --- one row per (host, port) -------------------------------------------------------------------


def _probe_failure(e: Entry) -> tuple[str, str] | None:
    """(stage, failure) of the first stage that failed on the probe, or None if all went well."""
    if e.dns is not None and e.dns != OK:
        return _DNS, e.dns
    if e.dns_consistent is False and not _control_agrees_with_answers(e):
        return _DNS, INCONSISTENT
    if e.stage == _DNS:
        return None
    if e.tcp is None:
        if e.skipped:
            return _DNS, Failure.DNS_BOGON_ERROR.value
        return _TCP, NOT_ATTEMPTED
    for stage, value in ((_TCP, e.tcp), (_TLS, e.tls), (_HTTP, e.http)):
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
    if stage in (_TCP, _TLS, _HTTP):
        steps.append(c.tcp)
    if stage in (_TLS, _HTTP):
        steps.append(c.tls if c.tls is not None else (c.http if e.plan.get("scheme") != "http"
                                                      else OK))  # fmt: skip
    if stage == _HTTP:
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
    return e.dns is None and e.stage != _DNS


def host_row(e: Entry) -> dict[str, Any]:
    """The ``x_hosts`` row of one entry."""
    failed = _probe_failure(e)
    blocking: bool | None
    if failed is None:
        outcome, blocking = Outcome.OK.value, False
    else:
        stage, failure = failed
        outcome = stage_outcome(stage, failure).value
        reached = _control_reached(e.control, stage, e)
        if reached is True:
            blocking = True
        elif reached is False:
            outcome, blocking = Outcome.DOWN_EVERYWHERE.value, False
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


# --- the rule table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppFacts:
    """What the rules read: our rows (None for OONI's data) and OONI's status keys."""

    test_name: str
    rows: tuple[Mapping[str, Any], ...] | None
    ooni: Mapping[str, Any]
    test_keys: Mapping[str, Any]

    @property
    def counted(self) -> list[Mapping[str, Any]]:
        return [r for r in self.rows or () if r.get("in_verdict", True)]


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str
    blocked: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppRule:
    rule_id: str
    verdict: AppVerdict
    evidence: Evidence
    predicate: Callable[[AppFacts], Decision | None]
    comment: str


def _blocked_rows(f: AppFacts) -> list[Mapping[str, Any]]:
    return [r for r in f.counted if r["blocking"] is True]


def _down_rows(f: AppFacts) -> list[Mapping[str, Any]]:
    return [r for r in f.counted if r["outcome"] == Outcome.DOWN_EVERYWHERE]


def _ids(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(r["id"]) for r in rows))


def _no_hosts(f: AppFacts) -> Decision | None:
    if f.rows is None or f.counted:
        return None
    return Decision(Outcome.UNKNOWN_UNKNOWN.value)


def _all_blocked(f: AppFacts) -> Decision | None:
    blocked = _blocked_rows(f)
    if f.rows is None or not blocked or len(blocked) + len(_down_rows(f)) != len(f.counted):
        return None
    return Decision(str(blocked[0]["outcome"]), _ids(blocked))


def _some_blocked(f: AppFacts) -> Decision | None:
    blocked = _blocked_rows(f)
    if f.rows is None or not blocked:
        return None
    return Decision(str(blocked[0]["outcome"]), _ids(blocked))


def _no_control(f: AppFacts) -> Decision | None:
    unknown = [r for r in f.counted if r["blocking"] is None]
    return None if f.rows is None or not unknown else Decision(str(unknown[0]["outcome"]))


def _all_down(f: AppFacts) -> Decision | None:
    if f.rows is None or len(_down_rows(f)) != len(f.counted):
        return None
    return Decision(Outcome.DOWN_EVERYWHERE.value)


def _rows_ok(f: AppFacts) -> Decision | None:
    return None if f.rows is None else Decision(Outcome.OK.value)


def _ooni_no_status(f: AppFacts) -> Decision | None:
    if f.rows is not None or status_known(f.test_name, f.ooni):
        return None
    return Decision(Outcome.UNKNOWN_UNKNOWN.value)


def _ooni_blocked(f: AppFacts) -> Decision | None:
    if f.rows is not None:
        return None
    blocked = blocked_components(f.test_name, f.ooni, f.test_keys)
    if not blocked:
        return None
    component, stage, failure = blocked[0]
    if stage is None or failure is None:
        outcome = Outcome.UNKNOWN_UNDETERMINED.value
    else:
        outcome = stage_outcome(stage, failure).value
    return Decision(outcome, tuple(name for name, _, _ in blocked))


def _ooni_ok(f: AppFacts) -> Decision | None:
    return None if f.rows is not None else Decision(Outcome.OK.value)


_V = AppVerdict
APP_RULES: tuple[AppRule, ...] = (
    AppRule("apps.no-hosts", _V.UNDETERMINED, Evidence.NONE, _no_hosts,
            "our plan lists no host that counts for the verdict"),
    AppRule("apps.blocked", _V.BLOCKED, Evidence.CONTROL, _all_blocked,
            "every counted host that is not down everywhere is blocked: the control got "
            "through the stage that failed on the probe"),
    AppRule("apps.partially-blocked", _V.PARTIALLY_BLOCKED, Evidence.CONTROL, _some_blocked,
            "some counted hosts are blocked, others work"),
    AppRule("apps.no-control", _V.UNDETERMINED, Evidence.NONE, _no_control,
            "a host failed and the control gave no answer for it"),
    AppRule("apps.down", _V.DOWN, Evidence.CONTROL, _all_down,
            "every counted host failed for the control at the same stage too"),
    AppRule("apps.accessible", _V.ACCESSIBLE, Evidence.LOCAL, _rows_ok,
            "every counted host worked (some may be down everywhere)"),
    AppRule("apps.ooni.no-status", _V.UNDETERMINED, Evidence.NONE, _ooni_no_status,
            "an OONI measurement without our plan nor the status keys of its test"),
    AppRule("apps.ooni.blocked", _V.BLOCKED, Evidence.LOCAL, _ooni_blocked,
            "OONI's own status keys say a component is blocked (OONI's app tests have no "
            "control); the outcome is the component's failure at the stage that recorded it"),
    AppRule("apps.ooni.accessible", _V.ACCESSIBLE, Evidence.LOCAL, _ooni_ok,
            "OONI's status keys say every component worked"),
)  # fmt: skip


def analyze_app(
    measurement: Mapping[str, Any], *, fingerprints: object = None, public_ranges: object = ()
) -> dict[str, Any]:
    """Verdict keys for one app measurement (ours, or OONI's without our plan). The keyword
    arguments are the web analysis' (the registry calls every engine alike); unused here."""
    test_name = str(measurement.get("test_name") or "")
    raw = measurement.get("test_keys")
    tk: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    out: dict[str, Any] = {}
    if isinstance(tk.get("x_app_hosts"), list):
        found = entries(tk)
        compute = OONI_KEYS.get(test_name)
        if compute is not None:
            out.update(compute(found))
        rows = [host_row(e) for e in found]
        out["x_hosts"] = rows
        facts = AppFacts(test_name, tuple(rows), out, tk)
    else:
        out["x_hosts"] = []
        facts = AppFacts(test_name, None, tk, tk)
    for rule in APP_RULES:
        decision = rule.predicate(facts)
        if decision is not None:
            break
    else:  # pragma: no cover - the last rule of each family always matches
        raise AssertionError("no app rule matched")
    out.update(
        {
            "x_app_verdict": rule.verdict.value,
            "x_outcome": decision.outcome,
            "x_blocking": list(decision.blocked),
            "x_anomaly": anomaly(test_name, dict(facts.ooni))
            if facts.rows is not None or status_known(test_name, facts.ooni)
            else None,
            "x_rule_id": rule.rule_id,
            "x_rules_version": APP_RULES_VERSION,
        }
    )
    return out


def app_verdict(keys: Mapping[str, Any]) -> Verdict:
    """The short form of :func:`analyze_app`'s keys (the run summary, the batch columns)."""
    verdict = keys.get("x_app_verdict")
    blocked = [b for b in keys.get("x_blocking") or [] if isinstance(b, str)]
    flag = keys.get("x_anomaly")
    blocking: str | None
    accessible: bool | None
    if verdict in (AppVerdict.BLOCKED, AppVerdict.PARTIALLY_BLOCKED):
        blocking, accessible = ",".join(blocked) or None, False
    elif verdict in (AppVerdict.ACCESSIBLE, AppVerdict.DOWN):
        blocking, accessible = "false", verdict == AppVerdict.ACCESSIBLE
    else:
        blocking, accessible = None, None
    if not isinstance(flag, bool):
        flag = None if blocking is None else blocking != "false"
    outcome = keys.get("x_outcome")
    rule_id = keys.get("x_rule_id")
    version = keys.get("x_rules_version")
    return Verdict(
        blocking=blocking,
        accessible=accessible,
        anomaly=flag,
        outcome=outcome if isinstance(outcome, str) else None,
        rule_id=rule_id if isinstance(rule_id, str) else None,
        rules_version=version if isinstance(version, str) else None,
        fingerprint_id=None,
        label=str(verdict) if isinstance(verdict, str) else AppVerdict.UNDETERMINED.value,
    )
