"""Rules on synthetic measurements in our own format: what OONI's suite cannot exercise.

Each builder call writes the facts our probe records (docs/ARCHITECTURE.md, probe.experiment):
duplicate UDP replies, ``x_diag`` retries, skipped bogon endpoints, transfer samples and the
control's ``x_transfer``.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from probe.analysis import RULES, RULES_VERSION, VERDICT_KEYS, analyze
from probe.analysis.fingerprints import builtin

HOST = "blocked.example"
IP = "93.184.216.34"
PAGE = "<html><head><title>Real Example Page</title></head><body>" + "x" * 2000 + "</body></html>"


def _control(
    *, tls_ok: bool = True, status: int = 200, addrs: tuple[str, ...] = (IP,)
) -> dict[str, Any]:
    return {
        "tcp_connect": {f"{a}:443": {"status": True, "failure": None} for a in addrs},
        "tls_handshake": {
            f"{a}:443": {"server_name": HOST, "status": tls_ok, "failure": None} for a in addrs
        },
        "http_request": {
            "body_length": len(PAGE),
            "failure": None,
            "title": "Real Example Page",
            "headers": {"Content-Type": "text/html", "X-Site": "1"},
            "status_code": status,
        },
        "dns": {"failure": None, "addrs": list(addrs)},
        "ip_info": {a: {"asn": 15133, "flags": 10} for a in addrs},
    }


def measurement(
    *,
    scheme: str = "https",
    answers: tuple[str, ...] = (IP,),
    control: dict[str, Any] | None = None,
    asn: int = 15133,
) -> dict[str, Any]:
    """A successful fetch of ``scheme://HOST/`` from IP, in our probe's shape."""
    tags = ["depth=0", "classic"]
    port = 443 if scheme == "https" else 80
    tk: dict[str, Any] = {
        "queries": [
            {
                "engine": "getaddrinfo",
                "hostname": HOST,
                "query_type": "ANY",
                "failure": None,
                "answers": [{"answer_type": "A", "ipv4": a, "asn": asn} for a in answers],
                "tags": tags,
                "transaction_id": 1,
            },
            {
                "engine": "udp",
                "hostname": HOST,
                "query_type": "A",
                "failure": None,
                "answers": [{"answer_type": "A", "ipv4": a} for a in answers],
                "tags": ["depth=0"],
                "resolver_address": "198.18.0.53:53",
                "transaction_id": 2,
            },
        ],
        "tcp_connect": [
            {
                "ip": a,
                "port": port,
                "status": {"success": True, "failure": None},
                "tags": tags,
                "transaction_id": 3 + i,
            }
            for i, a in enumerate(answers)
        ],
        "tls_handshakes": [],
        "requests": [],
        "network_events": [],
        "x_dns_duplicate_responses": [],
        "x_skipped_endpoints": [],
        "control": _control() if control is None else control,
        "control_failure": None,
    }
    if scheme == "https":
        tk["tls_handshakes"] = [
            {
                "address": f"{a}:443",
                "server_name": HOST,
                "failure": None,
                "no_tls_verify": False,
                "tags": tags,
                "transaction_id": 3 + i,
            }
            for i, a in enumerate(answers)
        ]
    if answers:
        tk["requests"] = [_request(f"{scheme}://{HOST}/", f"{answers[0]}:{port}", tags, 3)]
    return {
        "input": f"{scheme}://{HOST}/",
        "test_name": "web_connectivity",
        "probe_cc": "RU",
        "test_keys": tk,
    }


def _request(url: str, address: str, tags: list[str], tid: int, body: str = PAGE) -> dict[str, Any]:
    return {
        "address": address,
        "failure": None,
        "request": {"url": url, "method": "GET", "headers": {}},
        "response": {
            "code": 200,
            "headers_list": [["Content-Type", "text/html"], ["X-Site", "1"]],
            "body": body,
            "body_is_truncated": False,
        },
        "tags": tags,
        "transaction_id": tid,
    }


def test_rule_table_is_well_formed() -> None:
    ids = [r.rule_id for r in RULES]
    assert len(ids) == len(set(ids))
    assert RULES[-1].rule_id == "unknown.undetermined"
    for rule in RULES:
        stage, _, rest = rule.outcome.partition("/")
        assert rule.outcome == "ok" or (stage and rest), rule.rule_id
        assert rule.evidence in {"local", "control", "none"}
        assert rule.comment
        if rule.blocking is False:
            assert rule.accessible is not None
        if rule.blocking not in (False, None):
            assert rule.accessible is False


def test_plain_success_is_ok_with_all_keys() -> None:
    v = analyze(measurement())
    assert list(v) == list(VERDICT_KEYS)
    assert (v["blocking"], v["accessible"], v["x_outcome"]) == (False, True, "ok")
    assert v["x_rules_version"] == RULES_VERSION
    assert v["x_evidence"] == ["requests[0]"]


def test_injected_duplicate_dns_reply_needs_no_control() -> None:
    m = measurement()
    tk = m["test_keys"]
    tk["control"], tk["control_failure"] = None, "generic_timeout_error"
    dup = copy.deepcopy(tk["queries"][1])
    dup["answers"] = [{"answer_type": "A", "ipv4": "10.10.34.35"}]
    dup["tags"] = ["depth=0", "x_duplicate"]
    tk["x_dns_duplicate_responses"] = [dup]
    v = analyze(m)
    assert v["x_outcome"] == "dns/injected"
    assert v["blocking"] == "dns"
    assert v["x_evidence"] == ["queries[1]", "x_dns_duplicate_responses[0]"]


def test_duplicate_with_same_answers_is_not_injection() -> None:
    m = measurement()
    tk = m["test_keys"]
    tk["x_dns_duplicate_responses"] = [copy.deepcopy(tk["queries"][1])]
    assert analyze(m)["x_outcome"] == "ok"


def _sni_blocked(*, diag_ok: bool, failure: str = "connection_reset") -> dict[str, Any]:
    m = measurement()
    tk = m["test_keys"]
    tk["requests"] = []
    tk["tls_handshakes"][0]["failure"] = failure
    tk["tcp_connect"].append(
        {
            "ip": IP,
            "port": 443,
            "status": {"success": True, "failure": None},
            "tags": ["depth=0", "x_diag=sni_retry"],
            "transaction_id": 9,
        }
    )
    tk["tls_handshakes"].append(
        {
            "address": f"{IP}:443",
            "server_name": "example.org",
            "failure": None if diag_ok else failure,
            "no_tls_verify": True,
            "tags": ["depth=0", "x_diag=sni_retry"],
            "transaction_id": 9,
        }
    )
    return m


def test_sni_retry_success_proves_sni_filtering_without_control() -> None:
    m = _sni_blocked(diag_ok=True)
    m["test_keys"]["control"], m["test_keys"]["control_failure"] = None, "connection_reset"
    v = analyze(m)
    assert (v["x_outcome"], v["x_rule_id"]) == ("tls/reset-after-clienthello", "tls.sni_diag_reset")
    assert v["x_evidence"] == ["tls_handshakes[0]", "tls_handshakes[1]"]
    assert v["http_experiment_failure"] == "connection_reset"
    v = analyze(_sni_blocked(diag_ok=True, failure="generic_timeout_error"))
    assert v["x_outcome"] == "tls/timeout-after-clienthello"


def test_sni_retry_failing_too_means_ip_level() -> None:
    v = analyze(_sni_blocked(diag_ok=False))
    assert (v["x_outcome"], v["blocking"]) == ("tcp/ip-blocked", "tcp_ip")


def test_host_retry_success_means_host_filtering() -> None:
    m = measurement(scheme="http")
    tk = m["test_keys"]
    tk["requests"][0].update(failure="connection_reset")
    tk["requests"][0]["response"] = {"code": 0, "body": "", "headers": None}
    diag = _request(f"http://{IP}/", f"{IP}:80", ["depth=0", "x_diag=host_retry"], 10)
    tk["requests"].insert(0, diag)
    v = analyze(m)
    assert (v["x_outcome"], v["x_rule_id"]) == ("http/reset-after-request", "http.host_diag_reset")
    assert v["x_evidence"] == ["requests[1]", "requests[0]"]


def test_geo_cdn_address_with_valid_certificate_is_consistent() -> None:
    m = measurement(answers=("151.101.1.1",))  # the control only saw IP
    v = analyze(m)
    assert v["dns_consistency"] == "consistent"
    assert v["x_outcome"] == "ok"


def test_unexpected_address_without_valid_tls_and_failed_fetch_is_dns() -> None:
    m = measurement(answers=("151.101.1.1",), asn=54113)
    tk = m["test_keys"]
    tk["tls_handshakes"][0]["failure"] = "ssl_invalid_hostname"
    tk["requests"] = []
    v = analyze(m)
    assert (v["dns_consistency"], v["blocking"], v["x_outcome"]) == (
        "inconsistent",
        "dns",
        "dns/unexpected-address",
    )


def test_bogon_answer_is_dns_blocking_unless_range_is_public() -> None:
    m = measurement(answers=("198.18.5.5",), asn=0)
    tk = m["test_keys"]
    tk["tcp_connect"], tk["tls_handshakes"], tk["requests"] = [], [], []
    tk["x_skipped_endpoints"] = ["198.18.5.5:443"]
    assert analyze(m)["x_outcome"] == "dns/bogon"
    lab = (ipaddress.ip_network("198.18.0.0/15"),)
    assert analyze(m, public_ranges=lab)["x_outcome"] == "dns/unexpected-address"


def test_both_sides_failing_is_down_not_blocking() -> None:
    m = measurement()
    tk = m["test_keys"]
    tk["tcp_connect"][0]["status"] = {"success": False, "failure": "generic_timeout_error"}
    tk["tls_handshakes"], tk["requests"] = [], []
    tk["control"]["tcp_connect"][f"{IP}:443"] = {
        "status": False,
        "failure": "generic_timeout_error",
    }
    v = analyze(m)
    assert (v["x_outcome"], v["blocking"], v["accessible"]) == ("down/everywhere", False, False)
    tk["control"]["tcp_connect"][f"{IP}:443"] = {"status": True, "failure": None}
    assert analyze(m)["x_outcome"] == "tcp/timeout"
    tk["control"], tk["control_failure"] = None, "generic_timeout_error"
    v = analyze(m)
    assert (v["x_outcome"], v["blocking"]) == ("unknown/control-unavailable", None)


def test_503_seen_by_control_too_is_not_blocking() -> None:
    m = measurement(scheme="http", control=_control(status=503))
    m["test_keys"]["requests"][0]["response"]["code"] = 503
    v = analyze(m)
    assert (v["x_outcome"], v["blocking"], v["accessible"]) == ("down/server-error", False, False)


def test_russian_blockpage_is_fingerprinted() -> None:
    m = measurement(scheme="http")
    body = "<h1>Доступ к ресурсу ограничен</h1><p>Проверить: http://eais.rkn.gov.ru/</p>"
    m["test_keys"]["requests"][0]["response"]["body"] = body
    # status and an uncommon header match: OONI's HTTP-diff rule misses it (ooni-format 10.9)
    assert analyze(m)["x_outcome"] == "ok"
    v = analyze(m, fingerprints=builtin())
    assert (v["x_outcome"], v["blocking"]) == ("http/blockpage", "http-diff")
    assert v["x_fingerprint_id"] is not None and v["x_fingerprint_id"].startswith("cpr.ru.")


def test_redirect_to_isp_block_host() -> None:
    m = measurement(scheme="http")
    tk = m["test_keys"]
    resp = tk["requests"][0]["response"]
    resp["code"], resp["body"] = 302, ""
    resp["headers_list"] = [["Location", "http://warning.rt.ru/?id=17"]]
    v = analyze(m, fingerprints=builtin())
    assert (v["x_outcome"], v["x_fingerprint_id"]) == (
        "http/redirect-to-blockpage",
        "cpr.ru.location.rt_warning",
    )


def _throttled(rate: float, *, control_seconds: float = 1.0) -> dict[str, Any]:
    m = measurement()
    tk = m["test_keys"]
    req = tk["requests"][0]
    req["failure"] = "generic_timeout_error"
    req["response"]["body_is_truncated"] = False
    tk["network_events"] = [
        {"operation": "bytes_received_cumulative", "t": 1.0 + k, "num_bytes": int(rate * k) + 1,
         "transaction_id": 3, "tags": []}
        for k in range(10)
    ]  # fmt: skip
    tk["control"]["http_request"]["x_transfer"] = {
        "body_length": 4_000_000,
        "t_first_byte": 0.2,
        "t_done": 0.2 + control_seconds,
    }
    return m


def test_throttling_flat_cap_far_below_control() -> None:
    v = analyze(_throttled(17_000.0))  # ~136 kbit/s, like the 2021 Twitter cap
    assert (v["x_outcome"], v["blocking"]) == ("http/throttled", "http-failure")
    assert "control.http_request.x_transfer" in v["x_evidence"]


def test_not_throttling_when_fast_or_control_slow_too() -> None:
    assert analyze(_throttled(200_000.0))["x_outcome"] != "http/throttled"
    assert analyze(_throttled(17_000.0, control_seconds=300.0))["x_outcome"] != "http/throttled"
