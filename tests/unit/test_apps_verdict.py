"""The pure app verdict: OONI's rules, the control deciding down versus blocked, idempotence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from probe.apps.verdict import APP_RULES, analyze_app
from probe.vocabulary import stage_outcome

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ooni-samples"
TAG = "x_app_host="


def plan(host_id: str, host: str, **kw: Any) -> dict[str, Any]:
    base = {"id": host_id, "host": host, "ports": [443], "stage": "http", "scheme": "https",
            "component": "", "in_verdict": True, "expected_networks": [], "healthy_status": [],
            "trust": "system"}  # fmt: skip
    return {**base, **kw}


def query(host_id: str, name: str, ips: list[str], failure: str | None = None) -> dict[str, Any]:
    answers = [{"answer_type": "A", "ipv4": ip} for ip in ips] or None
    return {"hostname": name, "answers": answers, "failure": failure, "tags": [TAG + host_id]}


def connect(host_id: str, ip: str, port: int, failure: str | None = None) -> dict[str, Any]:
    return {"ip": ip, "port": port, "status": {"success": failure is None, "failure": failure},
            "tags": [TAG + host_id]}  # fmt: skip


def handshake(host_id: str, ip: str, port: int, failure: str | None = None) -> dict[str, Any]:
    return {"address": f"{ip}:{port}", "failure": failure, "tags": [TAG + host_id]}


def request(
    host_id: str, ip: str, port: int, code: int, failure: str | None = None
) -> dict[str, Any]:
    return {"address": f"{ip}:{port}", "failure": failure, "response": {"code": code},
            "tags": [TAG + host_id]}  # fmt: skip


def control(host_id: str, port: int, *, dns: bool = True, tcp: bool = True, tls: bool = True,
            status: int = 200, ip: str = "1.2.3.4") -> dict[str, Any]:  # fmt: skip
    ep = f"{ip}:{port}"
    return {
        "host_id": host_id, "port": port, "url": "https://x/", "failure": None,
        "response": {
            "dns": {"failure": None if dns else "dns_name_error", "addrs": [ip] if dns else []},
            "tcp_connect": {ep: {"status": tcp, "failure": None if tcp else "connect_error"}},
            "tls_handshake": {ep: {"status": tls, "failure": None if tls else "connection_reset"}}
            if tcp else {},
            "http_request": {"failure": None if tls else "connection_reset", "status_code": status},
        },
    }  # fmt: skip


def msmt(test_name: str, **tk: Any) -> dict[str, Any]:
    keys = {"queries": [], "tcp_connect": [], "tls_handshakes": [], "requests": [],
            "x_app_control": [], **tk}  # fmt: skip
    return {"test_name": test_name, "test_keys": keys}


def test_row_outcomes_speak_the_web_vocabulary() -> None:
    """One word, one meaning: a RST to the SYN is tcp/refused for apps as for websites."""
    assert stage_outcome("tcp", "connection_refused") == "tcp/refused"
    assert stage_outcome("tcp", "connection_reset") == "tcp/reset"
    assert stage_outcome("tcp", "host_unreachable") == "tcp/icmp-unreachable"
    assert stage_outcome("tls", "connection_reset") == "tls/reset-after-clienthello"
    assert stage_outcome("tls", "generic_timeout_error") == "tls/timeout-after-clienthello"
    assert stage_outcome("http", "connection_reset") == "http/reset-after-request"
    assert stage_outcome("dns", "dns_nxdomain_error") == "dns/nxdomain"
    assert stage_outcome("http", "unknown_failure: boom [scrubbed]") == "http/failure"


def test_rule_ids_are_unique_and_documented() -> None:
    ids = [r.rule_id for r in APP_RULES]
    assert len(ids) == len(set(ids))
    docs = (Path(__file__).resolve().parents[2] / "docs" / "apps.md").read_text()
    for rule in APP_RULES:
        assert f"`{rule.rule_id}`" in docs, rule.rule_id


@pytest.mark.parametrize(
    ("ctl", "outcome", "blocking", "verdict"),
    [
        # the control resolves, connects and handshakes: the probe's reset is censorship
        (control("a", 443), "tls/reset-after-clienthello", True, "blocked"),
        # the control is reset too: the server is broken, not censored
        (control("a", 443, tls=False), "down/everywhere", False, "down"),
        # the control cannot even connect
        (control("a", 443, tcp=False), "down/everywhere", False, "down"),
        # the control failed: nothing can be concluded
        (
            {"host_id": "a", "port": 443, "response": None, "failure": "generic_timeout_error"},
            "tls/reset-after-clienthello",
            None,
            "undetermined",
        ),  # fmt: skip
        (None, "tls/reset-after-clienthello", None, "undetermined"),
    ],
)
def test_control_decides_down_or_blocked(
    ctl: dict[str, Any] | None, outcome: str, blocking: bool | None, verdict: str
) -> None:
    m = msmt(
        "app_endpoints",
        x_app_hosts=[plan("a", "a.example")],
        queries=[query("a", "a.example", ["1.2.3.4"])],
        tcp_connect=[connect("a", "1.2.3.4", 443)],
        tls_handshakes=[handshake("a", "1.2.3.4", 443, "connection_reset")],
        x_app_control=[ctl] if ctl else [],
    )
    out = analyze_app(m)
    (row,) = out["x_hosts"]
    assert (row["outcome"], row["blocking"], out["x_app_verdict"]) == (outcome, blocking, verdict)
    assert out["x_anomaly"] is None  # not an OONI test


def test_partial_blocking_and_idempotence() -> None:
    m = msmt(
        "app_endpoints",
        x_app_hosts=[plan("a", "a.example"), plan("b", "b.example", healthy_status=[200])],
        queries=[
            query("a", "a.example", [], "dns_nxdomain_error"),
            query("b", "b.example", ["1.2.3.4"]),
        ],  # fmt: skip
        tcp_connect=[connect("b", "1.2.3.4", 443)],
        tls_handshakes=[handshake("b", "1.2.3.4", 443)],
        requests=[request("b", "1.2.3.4", 443, 200)],
        x_app_control=[control("a", 443), control("b", 443)],
    )
    first = analyze_app(m)
    assert first["x_app_verdict"] == "partially-blocked"
    assert first["x_outcome"] == "dns/nxdomain"
    assert (first["x_rule_id"], first["x_blocking"]) == ("apps.partially-blocked", ["a"])
    m["test_keys"].update(first)
    assert analyze_app(m) == first  # recomputing from the stored measurement gives the same


def test_unexpected_status_against_control() -> None:
    base = dict(
        x_app_hosts=[plan("w", "w.example", healthy_status=[200])],
        queries=[query("w", "w.example", ["1.2.3.4"])],
        tcp_connect=[connect("w", "1.2.3.4", 443)],
        tls_handshakes=[handshake("w", "1.2.3.4", 443)],
        requests=[request("w", "1.2.3.4", 443, 403)],
    )
    blocked = analyze_app(msmt("app_endpoints", **base, x_app_control=[control("w", 443)]))
    assert blocked["x_hosts"][0]["outcome"] == "http/unexpected-status"
    assert blocked["x_app_verdict"] == "blocked"
    down = analyze_app(msmt("app_endpoints", **base, x_app_control=[control("w", 443, status=503)]))
    assert down["x_app_verdict"] == "down"


def test_whatsapp_endpoint_blocked_only_if_both_ports_fail() -> None:
    ep = plan("e1", "e1.w", ports=[443, 5222], stage="tcp", component="endpoints")
    m = msmt(
        "whatsapp",
        x_app_hosts=[
            ep,
            plan("reg", "v.w", component="registration"),
            plan("web", "web.w", component="web"),
        ],  # fmt: skip
        queries=[
            query("e1", "e1.w", ["1.1.1.1"]),
            query("reg", "v.w", ["2.2.2.2"]),
            query("web", "web.w", ["2.2.2.2"]),
        ],  # fmt: skip
        tcp_connect=[
            connect("e1", "1.1.1.1", 443, "generic_timeout_error"),
            connect("e1", "1.1.1.1", 5222),
            connect("reg", "2.2.2.2", 443),
            connect("web", "2.2.2.2", 443),
        ],  # fmt: skip
        tls_handshakes=[
            handshake("reg", "2.2.2.2", 443),
            handshake("web", "2.2.2.2", 443, "ssl_invalid_hostname"),
        ],  # fmt: skip
        requests=[request("reg", "2.2.2.2", 443, 405)],
    )
    out = analyze_app(m)
    assert out["whatsapp_endpoints_status"] == "ok"
    assert out["whatsapp_endpoints_blocked"] == []
    assert out["registration_server_status"] == "ok"  # a 405 is an answer: healthy
    assert out["whatsapp_web_status"] == "blocked"
    assert out["whatsapp_web_failure"] == "ssl_invalid_hostname"
    assert out["x_anomaly"] is True


def test_facebook_dns_consistency_by_networks() -> None:
    nets = ["157.240.0.0/16"]
    m = msmt(
        "facebook_messenger",
        x_app_hosts=[
            plan("stun", "stun.f", stage="dns", component="stun", expected_networks=nets),
            plan("b_api", "b-api.f", stage="tcp", component="b_api", expected_networks=nets),
            plan("edge", "edge.f", stage="tcp", component="edge", expected_networks=nets),
        ],
        queries=[
            query("stun", "stun.f", ["157.240.1.1"]),
            query("b_api", "b-api.f", ["157.240.1.2"]),
            query("edge", "edge.f", ["10.10.34.35"]),
        ],  # fmt: skip
        tcp_connect=[connect("b_api", "157.240.1.2", 443, "connection_reset")],
    )
    out = analyze_app(m)
    assert out["facebook_stun_dns_consistent"] is True
    assert out["facebook_stun_reachable"] is None
    assert out["facebook_b_api_dns_consistent"] is True
    assert out["facebook_b_api_reachable"] is False
    assert out["facebook_edge_dns_consistent"] is False
    assert out["facebook_edge_reachable"] is None
    assert out["facebook_dns_blocking"] is True and out["facebook_tcp_blocking"] is True
    rows = {r["id"]: r for r in out["x_hosts"]}
    assert rows["edge"]["outcome"] == "dns/inconsistent"
    assert rows["b_api"]["outcome"] == "tcp/reset"


def test_telegram_flags() -> None:
    dc = {"stage": "http", "scheme": "http", "component": "dc", "ports": [80]}
    m = msmt(
        "telegram",
        x_app_hosts=[plan("dc1", "9.9.9.1", **dc), plan("dc2", "9.9.9.2", **dc)],
        tcp_connect=[
            connect("dc1", "9.9.9.1", 80, "generic_timeout_error"),
            connect("dc2", "9.9.9.2", 80),
        ],  # fmt: skip
        requests=[request("dc2", "9.9.9.2", 80, 0, "connection_reset")],
    )
    out = analyze_app(m)
    # a connect worked, no HTTP answer came back
    assert out["telegram_tcp_blocking"] is False
    assert out["telegram_http_blocking"] is True
    assert {r["outcome"] for r in out["x_hosts"]} == {"tcp/timeout", "http/reset-after-request"}


@pytest.mark.parametrize(
    ("fixture", "verdict"),
    [
        ("explorer-fixture-IR-signal-nxdomain-*.json", "blocked"),
        ("explorer-fixture-RU-telegram-web-blocked-*.json", "blocked"),
        ("spec-example-ts-020-telegram.json", None),
    ],
)
def test_real_ooni_measurements_without_our_plan(fixture: str, verdict: str | None) -> None:
    (path,) = sorted(SAMPLES.glob(fixture))
    data = json.loads(path.read_text())
    data = data.get("raw_measurement", data)
    out = analyze_app(data)
    assert out["x_hosts"] == []
    if verdict is not None:
        assert out["x_app_verdict"] == verdict
    else:
        assert out["x_app_verdict"] in ("accessible", "blocked")
