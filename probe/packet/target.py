"""What the packet-level test probes, read from a web measurement's facts and verdict (pure).

A :class:`PacketTarget` names the blocked stage, the address the trigger goes to, the trigger's
name (the SNI, the Host, the DNS query) and where the facts came from. :func:`from_measurement`
reads them from one of our ``web_connectivity`` measurements (its ``x_outcome`` and
``x_evidence``, then the events they point at); ``probe run --packet-level`` and ``probe packet``
share it. Only IPv4 is traced (docs/packet.md, limits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from probe import registry
from probe.analysis.values import as_dict, as_float, as_list, as_str, failure_of, tags_of
from probe.netaddr import parse_ip, split_endpoint
from probe.vocabulary import Outcome, Stage

STAGES = (Stage.TLS.value, Stage.HTTP.value, Stage.DNS.value)

#: web outcomes (docs/verdicts.md) a packet-level trace can locate, by the stage it probes
FOLLOWED: Mapping[str, str] = {
    **dict.fromkeys(
        (Outcome.TLS_RESET, Outcome.TLS_TIMEOUT, Outcome.TLS_EOF, Outcome.TLS_MITM_CERTIFICATE),
        Stage.TLS.value,
    ),
    **dict.fromkeys(
        (
            Outcome.HTTP_RESET,
            Outcome.HTTP_EOF,
            Outcome.HTTP_TIMEOUT,
            Outcome.HTTP_BLOCKPAGE,
            Outcome.HTTP_REDIRECT_TO_BLOCKPAGE,
            Outcome.HTTP_DIFF,
        ),
        Stage.HTTP.value,
    ),
    Outcome.DNS_INJECTED: Stage.DNS.value,
}


@dataclass(frozen=True, slots=True)
class PacketTarget:
    """One packet-level follow-up: trigger ``name`` sent to ``address:port`` at ``stage``."""

    url: str
    stage: str  # "tls": ClientHello with SNI ``name``; "http": request with Host ``name``;
    # "dns": A query for ``name`` to the resolver ``address:port``
    address: str
    port: int
    name: str
    #: the request target of the HTTP trigger
    path: str = "/"
    #: which web measurement asked for this (report id, start time, outcome, evidence)
    source: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": self.url,
            "stage": self.stage,
            "address": self.address,
            "port": self.port,
            "name": self.name,
        }
        if self.stage == "http":
            out["path"] = self.path
        out["measurement"] = dict(self.source)
        return out


def manual(url: str, *, stage: str, address: str, port: int | None = None) -> PacketTarget:
    """A target given by hand (``probe packet --input URL --address IP``). Raises ValueError."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    if stage == "dns":
        ip, default_port = address, 53
        if address.count(":") == 1:
            ip, default_port = split_endpoint(address)
    else:
        ip, default_port = address, (443 if stage == "tls" else 80)
    if parse_ip(ip) is None or ":" in ip:
        raise ValueError(f"not an IPv4 address: {ip!r}")
    if not 0 < (port or default_port) < 65536:
        raise ValueError(f"not a port: {port or default_port}")
    return PacketTarget(
        url=url,
        stage=stage,
        address=ip,
        port=port or default_port,
        name=host,
        path=_path(parts.path, parts.query),
        source={"manual": True},
    )


def from_measurement(
    msmt: Mapping[str, Any], *, extra_dns_servers: Sequence[str] = ()
) -> list[PacketTarget]:
    """The follow-ups one web measurement asks for (none unless its verdict is one of
    :data:`FOLLOWED`). ``extra_dns_servers`` ("ip:port") are traced too for ``dns/injected``."""
    if msmt.get("test_name") != registry.WEB_CONNECTIVITY:
        return []
    tk = as_dict(msmt.get("test_keys"))
    outcome = as_str(tk.get("x_outcome")) or ""
    stage = FOLLOWED.get(outcome)
    url = as_str(msmt.get("input"))
    host = urlsplit(url).hostname if url else None
    if stage is None or url is None or not host:
        return []
    evidence = [e for e in as_list(tk.get("x_evidence")) if isinstance(e, str)]
    source = {
        "report_id": msmt.get("report_id"),
        "measurement_start_time": msmt.get("measurement_start_time"),
        "x_outcome": outcome,
        "x_evidence": evidence,
    }
    if stage == "tls":
        found = _tls_targets(url, tk, evidence, source)
    elif stage == "http":
        found = _http_targets(url, tk, evidence, source)
    else:
        found = _dns_targets(url, host, tk, evidence, source, extra_dns_servers)
    out: dict[tuple[str, str, int, str], PacketTarget] = {}
    for t in found:
        out.setdefault((t.stage, t.address, t.port, t.name), t)
    return list(out.values())


def _indexed(refs: Iterable[str], name: str) -> list[int]:
    out = []
    for ref in refs:
        head, sep, rest = ref.partition("[")
        if head == name and sep and rest.endswith("]") and rest[:-1].isdigit():
            out.append(int(rest[:-1]))
    return out


def _picked(
    tk: dict[str, Any],
    name: str,
    evidence: list[str],
    *,
    host: str,
    host_of: Callable[[dict[str, Any]], str | None],
    failed: bool,
) -> list[dict[str, Any]]:
    """The main-flow events of ``tk[name]`` for the measured ``host`` (a redirect's target is
    not the trigger) that the verdict's evidence points at; without any, the earliest one (that
    failed, with ``failed``)."""
    events = [as_dict(e) for e in as_list(tk.get(name))]
    mine = [e for e in events if _main_flow(e) and (host_of(e) or "").lower() == host]
    picked = [events[i] for i in _indexed(evidence, name) if i < len(events)]
    picked = [e for e in picked if any(e is m for m in mine)]
    if picked:
        return picked
    if failed:
        mine = [e for e in mine if failure_of(e.get("failure"))]
    mine.sort(key=lambda e: as_float(e.get("t0")) or 0.0)
    return mine[:1]


def _request_host(event: dict[str, Any]) -> str | None:
    return urlsplit(as_str(as_dict(event.get("request")).get("url")) or "").hostname


def _server_name(event: dict[str, Any]) -> str | None:
    return as_str(event.get("server_name"))


def _main_flow(event: dict[str, Any]) -> bool:
    return not any(t.startswith("x_diag=") for t in tags_of(event))


def _endpoint(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    try:
        ip, port = split_endpoint(text)
    except ValueError:
        return None
    if parse_ip(ip) is None or ":" in ip or not 0 < port < 65536:  # IPv4 only
        return None
    return ip, port


def _path(path: str, query: str) -> str:
    return (path or "/") + (f"?{query}" if query else "")


def _tls_targets(
    url: str, tk: dict[str, Any], evidence: list[str], source: dict[str, Any]
) -> list[PacketTarget]:
    out = []
    host = urlsplit(url).hostname or ""
    for event in _picked(
        tk, "tls_handshakes", evidence, host=host, host_of=_server_name, failed=True
    ):
        endpoint = _endpoint(as_str(event.get("address")))
        name = as_str(event.get("server_name"))
        if endpoint is None or not name or not _main_flow(event):
            continue
        out.append(PacketTarget(url, "tls", endpoint[0], endpoint[1], name, source=source))
    return out


def _http_targets(
    url: str, tk: dict[str, Any], evidence: list[str], source: dict[str, Any]
) -> list[PacketTarget]:
    out = []
    host = urlsplit(url).hostname or ""
    for event in _picked(tk, "requests", evidence, host=host, host_of=_request_host, failed=False):
        request = as_dict(event.get("request"))
        parts = urlsplit(as_str(request.get("url")) or "")
        endpoint = _endpoint(as_str(event.get("address")))
        # a Host only travels in clear over http: an https request is the TLS stage's business
        if parts.scheme != "http" or not parts.hostname or endpoint is None:
            continue
        if not _main_flow(event):
            continue
        out.append(
            PacketTarget(
                url,
                "http",
                endpoint[0],
                endpoint[1],
                parts.hostname,
                path=_path(parts.path, parts.query),
                source=source,
            )
        )
    return out


def _dns_targets(
    url: str,
    host: str,
    tk: dict[str, Any],
    evidence: list[str],
    source: dict[str, Any],
    extra: Sequence[str],
) -> list[PacketTarget]:
    resolvers: list[str] = []
    for name in ("queries", "x_dns_duplicate_responses"):
        events = [as_dict(e) for e in as_list(tk.get(name))]
        for i in _indexed(evidence, name):
            if i < len(events) and as_str(events[i].get("engine")) == "udp":
                resolvers.append(as_str(events[i].get("resolver_address")) or "")
    if not resolvers:
        for event in (as_dict(e) for e in as_list(tk.get("queries"))):
            if as_str(event.get("engine")) == "udp":
                resolvers.append(as_str(event.get("resolver_address")) or "")
    out = []
    for text in [*resolvers, *extra]:
        endpoint = _endpoint(text)
        if endpoint is not None:
            out.append(PacketTarget(url, "dns", endpoint[0], endpoint[1], host, source=source))
    return out
