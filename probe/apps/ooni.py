"""Pure: OONI's test keys for whatsapp, telegram, signal and facebook_messenger.

Decided from the probe's own facts only (OONI's tests use no control), as the specs say
(ooni-format.md section 11; ts-018, ts-020, ts-029, ts-019):

- whatsapp: ``whatsapp_endpoints_status`` "ok" if any endpoint (host, port) connected, else
  "blocked"; ``whatsapp_endpoints_blocked`` = hosts whose every port failed;
  ``whatsapp_endpoints_dns_inconsistent`` = [] (legacy); registration server and WhatsApp Web
  "blocked" with the failure on any DNS/TCP/TLS/HTTP error (the HTTP status is ignored).
- telegram: ``telegram_tcp_blocking`` true unless some DC connect worked,
  ``telegram_http_blocking`` true unless some DC answered HTTP; ``telegram_web_status`` /
  ``telegram_web_failure`` as for WhatsApp Web.
- signal: ``signal_backend_status`` "blocked" if any backend host failed, with the last failure
  seen in ``signal_backend_failure``; uptime.signal.org is ignored.
- facebook_messenger: ``facebook_<name>_dns_consistent`` (resolution worked and every answer is
  in the expected networks), ``facebook_<name>_reachable`` (null when DNS was inconsistent and
  always for STUN), ``facebook_dns_blocking`` / ``facebook_tcp_blocking``.

Read back (:func:`status_known`, :func:`blocked_components`, :func:`anomaly`), the same keys
give OONI's own conclusions about a measurement OONI made: which components were blocked
(``whatsapp_endpoints``, ``registration_server``, ``whatsapp_web``, ``telegram_tcp``,
``telegram_http``, ``telegram_web``, ``signal_backend``, ``facebook_dns``, ``facebook_tcp``, in
that order) with the failure and the stage that recorded it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from probe.apps.facts import OK, Entry
from probe.vocabulary import FAILURE_STAGE, INCONSISTENT, Failure, Stage


def _component(entries: Sequence[Entry], name: str) -> list[Entry]:
    return [e for e in entries if e.component == name and e.in_verdict]


def _status(entries: Sequence[Entry]) -> tuple[str, str | None]:
    """("ok", None) unless one entry failed: ("blocked", its failure)."""
    for e in entries:
        if e.failure is not None:
            return "blocked", e.failure
        if e.skipped and e.tcp is None:
            return "blocked", Failure.DNS_BOGON_ERROR.value
    return "ok", None


def whatsapp(entries: Sequence[Entry]) -> dict[str, Any]:
    endpoints = _component(entries, "endpoints")
    by_host: dict[str, list[Entry]] = {}
    for e in endpoints:
        by_host.setdefault(e.hostname, []).append(e)
    blocked_hosts = sorted(h for h, es in by_host.items() if all(x.tcp != OK for x in es))
    reg_status, reg_failure = _status(_component(entries, "registration"))
    web_status, web_failure = _status(_component(entries, "web"))
    return {
        "whatsapp_endpoints_status": "ok" if any(e.tcp == OK for e in endpoints) else "blocked",
        "whatsapp_endpoints_blocked": blocked_hosts,
        "whatsapp_endpoints_dns_inconsistent": [],
        "registration_server_status": reg_status,
        "registration_server_failure": reg_failure,
        "whatsapp_web_status": web_status,
        "whatsapp_web_failure": web_failure,
    }


def telegram(entries: Sequence[Entry]) -> dict[str, Any]:
    dcs = _component(entries, "dc")
    http_ok = any(e.http == OK or (e.http_status or 0) > 0 for e in dcs)
    tcp_ok = any(e.tcp == OK for e in dcs)
    web_status, web_failure = _status(_component(entries, "web"))
    return {
        "telegram_tcp_blocking": not (tcp_ok or http_ok),
        "telegram_http_blocking": not http_ok,
        "telegram_web_status": web_status,
        "telegram_web_failure": web_failure,
    }


def signal(entries: Sequence[Entry]) -> dict[str, Any]:
    failure: str | None = None
    for e in _component(entries, "backend"):
        failure = e.failure or failure
    return {
        "signal_backend_status": "blocked" if failure else "ok",
        "signal_backend_failure": failure,
    }


def facebook_messenger(entries: Sequence[Entry]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dns_blocking = tcp_blocking = False
    for e in entries:
        if not e.in_verdict:
            continue
        name = e.component
        consistent = e.dns_consistent
        if consistent is None:  # no expected networks listed: consistent iff it resolved
            consistent = e.dns == OK
        out[f"facebook_{name}_dns_consistent"] = consistent
        reachable: bool | None = None
        if consistent and e.stage != "dns":
            reachable = e.tcp == OK
        out[f"facebook_{name}_reachable"] = reachable
        dns_blocking |= not consistent
        tcp_blocking |= reachable is False
    out["facebook_dns_blocking"] = dns_blocking
    out["facebook_tcp_blocking"] = tcp_blocking
    return out


OONI_KEYS: dict[str, Callable[[Sequence[Entry]], dict[str, Any]]] = {
    "whatsapp": whatsapp,
    "telegram": telegram,
    "signal": signal,
    "facebook_messenger": facebook_messenger,
}


def anomaly(test_name: str, keys: dict[str, Any]) -> bool | None:
    """OONI's anomaly rule of each test, from its status keys."""
    if test_name == "whatsapp":
        return any(
            keys.get(k) == "blocked"
            for k in (
                "whatsapp_endpoints_status", "registration_server_status", "whatsapp_web_status"
            )
        )  # fmt: skip
    if test_name == "telegram":
        return bool(
            keys.get("telegram_web_status") == "blocked"
            or keys.get("telegram_tcp_blocking")
            or keys.get("telegram_http_blocking")
        )
    if test_name == "signal":
        return keys.get("signal_backend_status") == "blocked"
    if test_name == "facebook_messenger":
        return bool(keys.get("facebook_dns_blocking") or keys.get("facebook_tcp_blocking"))
    return None


# --- OONI's conclusions, read back from its keys ----------------------------------------------

#: (test key holding events, stage) in the order a connection goes through them
_EVENT_STAGES = (
    ("queries", Stage.DNS.value),
    ("tcp_connect", Stage.TCP.value),
    ("tls_handshakes", Stage.TLS.value),
    ("requests", Stage.HTTP.value),
)

#: (component, stage or None, failure or None)
Blocked = tuple[str, str | None, str | None]


def _event_failure(event: Any) -> Any:
    if not isinstance(event, Mapping):
        return None
    status = event.get("status")
    if isinstance(status, Mapping):
        return status.get("failure")
    return event.get("failure")


def failure_stage(failure: str, test_keys: Mapping[str, Any]) -> str | None:
    """The stage at which ``failure`` happened: the one its name says, else the first event
    list that records it, else None."""
    named = FAILURE_STAGE.get(failure)
    if named is not None:
        return named
    for key, stage in _EVENT_STAGES:
        events = test_keys.get(key)
        if isinstance(events, list) and any(_event_failure(e) == failure for e in events):
            return stage
    return None


def _first_failure(test_keys: Mapping[str, Any], key: str) -> str | None:
    events = test_keys.get(key)
    for event in events if isinstance(events, list) else ():
        failure = _event_failure(event)
        if isinstance(failure, str):
            return failure
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_WHATSAPP = (
    ("whatsapp_endpoints", "whatsapp_endpoints_status", None),
    ("registration_server", "registration_server_status", "registration_server_failure"),
    ("whatsapp_web", "whatsapp_web_status", "whatsapp_web_failure"),
)
_STATUS = ("ok", "blocked")


def status_known(test_name: str, keys: Mapping[str, Any]) -> bool:
    """Whether ``keys`` hold the status keys OONI's ``test_name`` decides with."""
    if test_name == "whatsapp":
        return any(keys.get(status) in _STATUS for _, status, _ in _WHATSAPP)
    if test_name == "telegram":
        return keys.get("telegram_web_status") in _STATUS or isinstance(
            keys.get("telegram_tcp_blocking"), bool
        )
    if test_name == "signal":
        return keys.get("signal_backend_status") in _STATUS
    if test_name == "facebook_messenger":
        return isinstance(keys.get("facebook_dns_blocking"), bool) or isinstance(
            keys.get("facebook_tcp_blocking"), bool
        )
    return False


def _blocked_failures(test_name: str, k: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    if test_name == "whatsapp":
        for name, status, failure_key in _WHATSAPP:
            if k.get(status) == "blocked":
                failure = _text(k.get(failure_key)) if failure_key else None
                if failure is None and name == "whatsapp_endpoints":
                    failure = _first_failure(k, "tcp_connect")
                out.append((name, failure))
    elif test_name == "telegram":
        if k.get("telegram_tcp_blocking") is True:
            out.append(("telegram_tcp", _first_failure(k, "tcp_connect")))
        if k.get("telegram_http_blocking") is True:
            out.append(("telegram_http", _first_failure(k, "requests")))
        if k.get("telegram_web_status") == "blocked":
            out.append(("telegram_web", _text(k.get("telegram_web_failure"))))
    elif test_name == "signal":
        if k.get("signal_backend_status") == "blocked":
            out.append(("signal_backend", _text(k.get("signal_backend_failure"))))
    elif test_name == "facebook_messenger":
        if k.get("facebook_dns_blocking") is True:
            out.append(("facebook_dns", _first_failure(k, "queries") or INCONSISTENT))
        if k.get("facebook_tcp_blocking") is True:
            out.append(("facebook_tcp", _first_failure(k, "tcp_connect")))
    return out


def blocked_components(
    test_name: str, keys: Mapping[str, Any], test_keys: Mapping[str, Any]
) -> list[Blocked]:
    """OONI's blocked components, in a fixed order, each with the stage and the failure that
    say how (None when OONI recorded none); [] when the status keys are missing."""
    if not status_known(test_name, keys):
        return []
    out: list[Blocked] = []
    for name, failure in _blocked_failures(test_name, keys):
        if name == "facebook_dns":
            out.append((name, Stage.DNS.value, failure))
            continue
        stage = failure_stage(failure, test_keys) if failure is not None else None
        out.append((name, stage, failure))
    return out
