"""Verdicts of OONI's instant-messaging tests, recomputed from their own test keys (pure).

whatsapp (ts-018), telegram (ts-020), signal (ts-029) and facebook_messenger (ts-019) carry
their conclusions in status keys; we keep OONI's rule (anomaly iff a component is blocked, see
ooni-format.md section 11) and add what the batch tables need: which components were blocked
(``blocking``, comma-joined, in a fixed order), and a ``stage/failure`` outcome found by locating
the failure string in the recorded events (dns, tcp, tls, http), so apps and websites can be
counted by stage in the same query.

Vocabulary of ``blocking`` components: ``whatsapp_endpoints``, ``registration_server``,
``whatsapp_web``, ``telegram_tcp``, ``telegram_http``, ``telegram_web``, ``signal_backend``,
``facebook_dns``, ``facebook_tcp``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

APPS_RULES_VERSION = "apps-1"

APP_TESTS = ("whatsapp", "telegram", "signal", "facebook_messenger")

#: (test key holding events, stage) in the order a connection goes through them
_EVENT_STAGES = (
    ("queries", "dns"),
    ("tcp_connect", "tcp"),
    ("tls_handshakes", "tls"),
    ("requests", "http"),
)


def _event_failure(event: Any) -> Any:
    if type(event) is not dict:
        return None
    if "status" in event and type(event["status"]) is dict:
        return event["status"].get("failure")
    return event.get("failure")


def failure_stage(failure: str, test_keys: Mapping[str, Any]) -> str:
    """The stage at which ``failure`` happened: by its name, else where the events record it."""
    if failure.startswith("dns_") or failure == "android_dns_cache_no_data":
        return "dns"
    if failure.startswith("ssl_"):
        return "tls"
    if failure.startswith("http_"):
        return "http"
    for key, stage in _EVENT_STAGES:
        events = test_keys.get(key)
        if isinstance(events, list) and any(_event_failure(e) == failure for e in events):
            return stage
    return "unknown"


def _verdict(
    test_keys: Mapping[str, Any], blocked: list[tuple[str, str | None]], known: bool, rule: str
) -> dict[str, Any]:
    if not known:
        return {
            "blocking": None,
            "accessible": None,
            "anomaly": None,
            "x_outcome": "unknown/unknown",
            "x_rule_id": f"{rule}.no-status",
            "x_rules_version": APPS_RULES_VERSION,
        }
    if not blocked:
        return {
            "blocking": False,
            "accessible": True,
            "anomaly": False,
            "x_outcome": "ok",
            "x_rule_id": f"{rule}.ok",
            "x_rules_version": APPS_RULES_VERSION,
        }
    component, failure = blocked[0]
    if failure:
        outcome = f"{failure_stage(failure, test_keys)}/{failure}"
    else:
        outcome = f"unknown/{component}-blocked"
    return {
        "blocking": ",".join(name for name, _ in blocked),
        "accessible": False,
        "anomaly": True,
        "x_outcome": outcome,
        "x_rule_id": f"{rule}.{component}",
        "x_rules_version": APPS_RULES_VERSION,
    }


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _whatsapp(tk: Mapping[str, Any]) -> dict[str, Any]:
    parts = (
        ("whatsapp_endpoints", "whatsapp_endpoints_status", None),
        ("registration_server", "registration_server_status", "registration_server_failure"),
        ("whatsapp_web", "whatsapp_web_status", "whatsapp_web_failure"),
    )
    known = any(tk.get(status) in ("ok", "blocked") for _, status, _ in parts)
    blocked: list[tuple[str, str | None]] = []
    for name, status, failure_key in parts:
        if tk.get(status) == "blocked":
            failure = _str_or_none(tk.get(failure_key)) if failure_key else None
            if failure is None and name == "whatsapp_endpoints":
                failure = _first_failure(tk, "tcp_connect")
            blocked.append((name, failure))
    return _verdict(tk, blocked, known, "whatsapp")


def _first_failure(tk: Mapping[str, Any], key: str) -> str | None:
    events = tk.get(key)
    if isinstance(events, list):
        for event in events:
            failure = _event_failure(event)
            if isinstance(failure, str):
                return failure
    return None


def _telegram(tk: Mapping[str, Any]) -> dict[str, Any]:
    known = tk.get("telegram_web_status") in ("ok", "blocked") or isinstance(
        tk.get("telegram_tcp_blocking"), bool
    )
    blocked: list[tuple[str, str | None]] = []
    if tk.get("telegram_tcp_blocking") is True:
        blocked.append(("telegram_tcp", _first_failure(tk, "tcp_connect")))
    if tk.get("telegram_http_blocking") is True:
        blocked.append(("telegram_http", _first_failure(tk, "requests")))
    if tk.get("telegram_web_status") == "blocked":
        blocked.append(("telegram_web", _str_or_none(tk.get("telegram_web_failure"))))
    return _verdict(tk, blocked, known, "telegram")


def _signal(tk: Mapping[str, Any]) -> dict[str, Any]:
    status = tk.get("signal_backend_status")
    blocked: list[tuple[str, str | None]] = []
    if status == "blocked":
        blocked.append(("signal_backend", _str_or_none(tk.get("signal_backend_failure"))))
    return _verdict(tk, blocked, status in ("ok", "blocked"), "signal")


def _facebook(tk: Mapping[str, Any]) -> dict[str, Any]:
    dns, tcp = tk.get("facebook_dns_blocking"), tk.get("facebook_tcp_blocking")
    blocked: list[tuple[str, str | None]] = []
    if dns is True:
        blocked.append(("facebook_dns", _first_failure(tk, "queries") or "dns_inconsistent"))
    if tcp is True:
        blocked.append(("facebook_tcp", _first_failure(tk, "tcp_connect")))
    verdict = _verdict(tk, blocked, isinstance(dns, bool) or isinstance(tcp, bool), "facebook")
    if blocked and blocked[0][0] == "facebook_dns":
        failure = blocked[0][1]
        verdict["x_outcome"] = f"dns/{failure}"
    return verdict


_RULES: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "whatsapp": _whatsapp,
    "telegram": _telegram,
    "signal": _signal,
    "facebook_messenger": _facebook,
}


def app_verdict(test_name: str, test_keys: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict keys of one app-test measurement (``test_name`` must be in ``APP_TESTS``)."""
    return _RULES[test_name](test_keys)
