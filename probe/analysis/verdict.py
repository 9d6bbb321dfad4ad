"""``analyze``: one measurement -> verdict keys (pure, total, deterministic).

Pipeline: :func:`~probe.analysis.observations.observe` (flat rows) ->
:func:`~probe.analysis.context.build` (DNS check, failing step, fingerprint hits) -> the first
rule of :data:`~probe.analysis.rules.RULES` that matches. The output holds OONI's classic keys
(ooni-format.md 10.4-10.8) and ours (``x_outcome``, ``x_rule_id``, ...).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from probe.analysis.context import Context, build
from probe.analysis.fingerprints import Fingerprints
from probe.analysis.observations import observe
from probe.analysis.rules import RULES, RULES_VERSION, Hit, Rule
from probe.config import IPNetwork
from probe.summary import Verdict, blocking_text
from probe.vocabulary import Failure, Outcome

_EMPTY = Fingerprints((), version="none")

#: the keys :func:`analyze` returns, in order
VERDICT_KEYS = (
    "dns_consistency", "dns_experiment_failure", "http_experiment_failure", "control_failure",
    "body_length_match", "body_proportion", "headers_match", "status_code_match", "title_match",
    "blocking", "accessible", "x_outcome", "x_rule_id", "x_rules_version", "x_fingerprint_id",
    "x_fingerprints_version", "x_evidence",
)  # fmt: skip


def analyze(
    measurement: Mapping[str, Any],
    *,
    fingerprints: Fingerprints | None = None,
    public_ranges: Sequence[IPNetwork] = (),
) -> dict[str, Any]:
    """Verdict keys for one measurement (ours, or OONI web_connectivity 0.4 / 0.5).

    Without ``public_ranges`` the ranges the probe itself treated as public (recorded in
    ``test_keys.x_public_ranges``, only ever set in the lab) apply, so a re-analysis of stored
    measurements reaches the verdict the probe reached.
    """
    fps = fingerprints if fingerprints is not None else _EMPTY
    try:
        if not public_ranges:
            public_ranges = recorded_public_ranges(measurement)
        ctx = build(observe(measurement), fingerprints=fps, public_ranges=public_ranges)
        for rule in RULES:
            hit = rule.predicate(ctx)
            if hit is not None:
                return _render(ctx, rule, hit, fps)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        return _internal_error(exc, fps)
    raise AssertionError("the catch-all rule always matches")  # pragma: no cover


def recorded_public_ranges(measurement: Mapping[str, Any]) -> tuple[IPNetwork, ...]:
    """``test_keys.x_public_ranges`` as networks; malformed items are ignored."""
    tk = measurement.get("test_keys")
    raw = tk.get("x_public_ranges") if type(tk) is dict or isinstance(tk, Mapping) else None
    if not isinstance(raw, list):
        return ()
    out: list[IPNetwork] = []
    for item in raw:
        try:
            out.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            continue
    return tuple(out)


def _dns_failure(ctx: Context) -> str | None:
    """The lookup's failure; a lookup that only returned bogons is ``dns_bogon_error``, as
    OONI's resolver reports it when bogons are filtered (we never connect to them)."""
    d = ctx.dns
    if d.failure is None and d.addrs and len(d.bogons) == len(d.addrs):
        return Failure.DNS_BOGON_ERROR.value
    return d.failure


def _render(ctx: Context, rule: Rule, hit: Hit, fps: Fingerprints) -> dict[str, Any]:
    blocking = rule.blocking
    if blocking == "tcp_ip" and ctx.step.depth > 0:
        blocking = "http-failure"  # OONI's v0.4 vocabulary: failures after a redirect
    final = ctx.final
    http_failure = hit.failure
    if http_failure is None and final is not None:
        http_failure = final.failure
    cmp = ctx.comparison
    return {
        "dns_consistency": ctx.dns.consistency,
        "dns_experiment_failure": _dns_failure(ctx),
        "http_experiment_failure": http_failure,
        "control_failure": ctx.obs.control_failure,
        "body_length_match": cmp.body_length_match,
        "body_proportion": cmp.body_proportion,
        "headers_match": cmp.headers_match,
        "status_code_match": cmp.status_code_match,
        "title_match": cmp.title_match,
        "blocking": blocking,
        "accessible": rule.accessible,
        "x_outcome": str(rule.outcome),
        "x_rule_id": rule.rule_id,
        "x_rules_version": RULES_VERSION,
        "x_fingerprint_id": hit.fingerprint,
        "x_fingerprints_version": fps.version,
        "x_evidence": list(dict.fromkeys(hit.evidence)),
    }


def _internal_error(exc: BaseException, fps: Fingerprints) -> dict[str, Any]:
    return {
        "dns_consistency": None,
        "dns_experiment_failure": None,
        "http_experiment_failure": None,
        "control_failure": None,
        "body_length_match": None,
        "body_proportion": 0.0,
        "headers_match": None,
        "status_code_match": None,
        "title_match": None,
        "blocking": None,
        "accessible": None,
        "x_outcome": Outcome.UNKNOWN_ANALYSIS_ERROR.value,
        "x_rule_id": "internal.error",
        "x_rules_version": RULES_VERSION,
        "x_fingerprint_id": None,
        "x_fingerprints_version": fps.version,
        "x_evidence": [type(exc).__name__],
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def web_verdict(keys: Mapping[str, Any]) -> Verdict:
    """The short form of :func:`analyze`'s keys (the run summary, the batch columns)."""
    blocking = blocking_text(keys.get("blocking"))
    accessible = keys.get("accessible")
    if not isinstance(accessible, bool):
        accessible = None
    if blocking is not None and blocking != "false":
        label = f"blocked ({blocking})"
    elif accessible is True:
        label = "accessible"
    elif accessible is False:
        label = "down"
    else:
        label = "undetermined"
    return Verdict(
        blocking=blocking,
        accessible=accessible,
        anomaly=None if blocking is None else blocking != "false",
        outcome=_text(keys.get("x_outcome")),
        rule_id=_text(keys.get("x_rule_id")),
        rules_version=_text(keys.get("x_rules_version")),
        fingerprint_id=_text(keys.get("x_fingerprint_id")),
        label=label,
    )
