"""Pure: the recorded facts of one app measurement, regrouped per (host, port) entry.

The runner tags every event of a host with ``x_app_host=<id>`` and stores the plan
(``x_app_hosts``) and the control answers (``x_app_control``) in the test keys. From those,
:func:`entries` rebuilds, for each planned (host, port), what each stage gave on the probe and
what the control saw. A host whose last stage is DNS gives one entry with ``port`` None.

Stage values are ``"ok"``, an OONI failure string, or None when the stage was not reached or
does not apply (no DNS for a fixed address, no TLS for plain HTTP). The HTTP stage is also
``"unexpected_status"`` when the host lists ``healthy_status`` and the answer is not one of them.
No I/O and no trio here: this must run on stored measurements.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe.netaddr import is_ip, join_endpoint, split_endpoint
from probe.vocabulary import UNEXPECTED_STATUS, Failure, THFailure

#: every event of a host is tagged ``x_app_host=<id>`` (the runner writes it, the facts read it)
HOST_TAG = "x_app_host="
OK = "ok"
_TLS_FAILED = Failure.SSL_FAILED_HANDSHAKE.value


@dataclass(frozen=True, slots=True)
class Control:
    """What the control vantage saw for one entry (None: not measured by the control)."""

    dns: str | None = None
    addrs: tuple[str, ...] = ()
    tcp: str | None = None
    tls: str | None = None
    http: str | None = None
    http_status: int | None = None
    failure: str | None = None
    asked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dns": self.dns,
            "tcp": self.tcp,
            "tls": self.tls,
            "http": self.http,
            "http_status": self.http_status,
            "failure": self.failure,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One (host, port) of the plan with the probe's stage results and the control's."""

    plan: Mapping[str, Any]
    port: int | None
    dns: str | None
    addresses: tuple[str, ...]
    dns_consistent: bool | None
    tcp: str | None
    tls: str | None
    http: str | None
    http_status: int | None
    skipped: bool
    control: Control

    @property
    def host_id(self) -> str:
        return str(self.plan.get("id", ""))

    @property
    def hostname(self) -> str:
        return str(self.plan.get("host", ""))

    @property
    def component(self) -> str:
        return str(self.plan.get("component", ""))

    @property
    def stage(self) -> str:
        return str(self.plan.get("stage", "http"))

    @property
    def in_verdict(self) -> bool:
        return self.plan.get("in_verdict", True) is not False

    @property
    def failure(self) -> str | None:
        """The failure of the first stage that failed (OONI's view of the entry), else None."""
        for value in (self.dns, self.tcp, self.tls, self.http):
            if value is not None and value not in (OK, UNEXPECTED_STATUS):
                return value
        return None


def _tagged(events: Any, host_id: str) -> list[Mapping[str, Any]]:
    if not isinstance(events, list):
        return []
    tag = HOST_TAG + host_id
    return [e for e in events if isinstance(e, Mapping) and tag in (e.get("tags") or [])]


def _port_of(address: Any) -> int | None:
    if not isinstance(address, str):
        return None
    try:
        return split_endpoint(address)[1]
    except ValueError:
        return None


def _merge(results: Sequence[str | None]) -> str | None:
    """Several attempts at one stage: ok if any worked, else the last failure."""
    values = [r for r in results if r is not None]
    if not values:
        return None
    return OK if OK in values else values[-1]


def _ok_or(failure: Any) -> str:
    return failure if isinstance(failure, str) else OK


def dns_answers(queries: Sequence[Mapping[str, Any]]) -> tuple[str | None, tuple[str, ...]]:
    """(``ok`` / failure / None, addresses) of a host's lookups."""
    if not queries:
        return None, ()
    addrs: list[str] = []
    failures: list[str | None] = []
    for q in queries:
        failures.append(_ok_or(q.get("failure")))
        for a in q.get("answers") or []:
            if isinstance(a, Mapping):
                ip = a.get("ipv4") or a.get("ipv6")
                if isinstance(ip, str) and ip not in addrs:
                    addrs.append(ip)
    return (OK if addrs else _merge(failures)), tuple(addrs)


def in_networks(addresses: Sequence[str], networks: Sequence[str]) -> bool:
    nets = [ipaddress.ip_network(n, strict=False) for n in networks]
    try:
        return bool(addresses) and all(
            any(ipaddress.ip_address(a) in n for n in nets) for a in addresses
        )
    except ValueError:
        return False


def _control_for(test_keys: Mapping[str, Any], plan: Mapping[str, Any], port: int) -> Control:
    for item in test_keys.get("x_app_control") or []:
        if not isinstance(item, Mapping):
            continue
        if item.get("host_id") == plan.get("id") and item.get("port") == port:
            return _summarize_control(item, plan, port)
    return Control()


def _summarize_control(item: Mapping[str, Any], plan: Mapping[str, Any], port: int) -> Control:
    response = item.get("response")
    if not isinstance(response, Mapping):
        return Control(failure=str(item.get("failure") or "control_failure"), asked=True)
    fixed = is_ip(str(plan.get("host", "")))
    dns_raw = response.get("dns")
    dns_part: Mapping[str, Any] = dns_raw if isinstance(dns_raw, Mapping) else {}
    addrs = tuple(a for a in dns_part.get("addrs") or [] if isinstance(a, str))
    dns: str | None = None
    if not fixed:
        failure = dns_part.get("failure")
        dns = (
            failure if isinstance(failure, str) else (OK if addrs else Failure.DNS_NO_ANSWER.value)
        )
    tcp = _merge(
        [
            _ok_or(None if v.get("status") else (v.get("failure") or THFailure.CONNECT_ERROR.value))
            for ep, v in (response.get("tcp_connect") or {}).items()
            if isinstance(v, Mapping) and _port_of(ep) == port
        ]
    )
    tls_results: list[str | None] = []
    for ep, v in (response.get("tls_handshake") or {}).items():
        if not isinstance(v, Mapping) or _port_of(ep) != port:
            continue
        failure = None if v.get("status") else (v.get("failure") or _TLS_FAILED)
        # the control trusts Mozilla's roots only: for an app with its own CA, a certificate
        # the control cannot validate still proves that the server answered the handshake
        if plan.get("trust") == "app" and isinstance(failure, str) and failure.startswith("ssl_"):
            failure = None
        tls_results.append(_ok_or(failure))
    http_part = response.get("http_request")
    http: str | None = None
    status: int | None = None
    if isinstance(http_part, Mapping):
        code = http_part.get("status_code")
        failure = http_part.get("failure")
        status = code if isinstance(code, int) and code > 0 else None
        if isinstance(failure, str):
            http = failure
        elif status is not None:
            http = OK
    return Control(
        dns=dns, addrs=addrs, tcp=tcp, tls=_merge(tls_results), http=http,
        http_status=status, asked=True,
    )  # fmt: skip


def entries(test_keys: Mapping[str, Any]) -> list[Entry]:
    """Every planned (host, port) of an app measurement, in plan order."""
    out: list[Entry] = []
    skipped_eps = set(test_keys.get("x_skipped_endpoints") or [])
    for plan in test_keys.get("x_app_hosts") or []:
        if not isinstance(plan, Mapping):
            continue
        host_id = str(plan.get("id", ""))
        fixed = is_ip(str(plan.get("host", "")))
        dns, addrs = (
            (OK, (str(plan.get("host")),))
            if fixed
            else dns_answers(_tagged(test_keys.get("queries"), host_id))
        )
        networks = [n for n in plan.get("expected_networks") or [] if isinstance(n, str)]
        consistent = None
        if networks:
            consistent = dns == OK and in_networks(addrs, networks)
        ports = [p for p in plan.get("ports") or [443] if isinstance(p, int)]
        if plan.get("stage") == "dns":
            control = _control_for(test_keys, plan, ports[0]) if ports else Control()
            out.append(_entry(plan, None, dns, addrs, consistent, control))
            continue
        tcps = _tagged(test_keys.get("tcp_connect"), host_id)
        tlss = _tagged(test_keys.get("tls_handshakes"), host_id)
        reqs = list(reversed(_tagged(test_keys.get("requests"), host_id)))  # oldest first
        healthy = [s for s in plan.get("healthy_status") or [] if isinstance(s, int)]
        for port in ports:
            tcp = _merge(
                [
                    _ok_or((e.get("status") or {}).get("failure"))
                    for e in tcps
                    if e.get("port") == port
                ]
            )
            tls = _merge(
                [_ok_or(e.get("failure")) for e in tlss if _port_of(e.get("address")) == port]
            )
            http, status = _http([r for r in reqs if _port_of(r.get("address")) == port], healthy)
            skipped = any(join_endpoint(a, port) in skipped_eps for a in addrs)
            out.append(
                Entry(
                    plan=plan,
                    port=port,
                    dns=None if fixed else dns,
                    addresses=addrs,
                    dns_consistent=consistent,
                    tcp=tcp,
                    tls=tls,
                    http=http,
                    http_status=status,
                    skipped=skipped,
                    control=_control_for(test_keys, plan, port),
                )  # fmt: skip
            )
    return out


def _entry(
    plan: Mapping[str, Any],
    port: int | None,
    dns: str | None,
    addrs: tuple[str, ...],
    consistent: bool | None,
    control: Control,
) -> Entry:
    return Entry(
        plan=plan, port=port, dns=dns, addresses=addrs, dns_consistent=consistent, tcp=None,
        tls=None, http=None, http_status=None, skipped=False, control=control,
    )  # fmt: skip


def _http(
    requests: Sequence[Mapping[str, Any]], healthy: Sequence[int]
) -> tuple[str | None, int | None]:
    results: list[str | None] = []
    status: int | None = None
    for r in requests:
        failure = r.get("failure")
        raw = r.get("response")
        response: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        code = response.get("code")
        if isinstance(code, int) and code > 0:
            status = code
        if isinstance(failure, str):
            results.append(failure)
        elif healthy and status not in healthy:
            results.append(UNEXPECTED_STATUS)
        else:
            results.append(OK)
    return _merge(results), status
