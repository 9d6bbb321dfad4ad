"""OONI's own parser (oonidata 0.3.0, in .venv-ref) accepts what we write and what OONI wrote.

The checker (tests/conformance/oonidata_check.py) reports load errors and every value oonidata
would silently coerce. These tests prove it can fail, that it passes real OONI data, and that a
measurement built with our models, the way the probe builds one, passes it strictly.
"""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset
import pytest
import trustme

from probe.archival import (
    WEB_CONNECTIVITY_EXTENSIONS,
    BinaryData,
    ControlDNS,
    ControlHTTPRequest,
    ControlIPInfo,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
    DNSAnswer,
    DNSQuery,
    HTTPRequest,
    HTTPResponse,
    HTTPTransaction,
    MaybeBinary,
    Measurement,
    NetworkEvent,
    TCPConnect,
    TCPConnectStatus,
    TLSHandshake,
    WebConnectivityTestKeys,
    maybe_binary,
    measurement_to_json,
)
from probe.meta import format_time, make_annotations, make_report_id, measurement_id
from probe.privacy import scrub_measurement
from tests.conformance.check import ReferenceParserMissing, check_with_oonidata

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ooni-samples"


def sample_lines() -> list[str]:
    """Every real (non edge-case) OONI measurement in shared/, one JSON text each."""
    lines: list[str] = []
    for path in sorted(SAMPLES.glob("*.json")):
        lines.append(json.dumps(json.loads(path.read_text(encoding="utf-8"))))
    for path in sorted(SAMPLES.glob("*.jsonl")):
        lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) >= 30, f"expected the OONI samples in {SAMPLES}"
    return lines


def der_certificate() -> bytes:
    ca = trustme.CA()
    leaf = ca.issue_cert("www.example.org")
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode("ascii"))


def dns_reply(host: str, ip: str) -> bytes:
    query = dns.message.make_query(host, "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(host + ".", 300, "IN", "A", ip))
    return reply.to_wire()


def build_measurement() -> dict[str, Any]:
    """A web_connectivity measurement built with our models, the way the probe builds one."""
    from datetime import UTC, datetime
    from random import Random

    now = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
    host, ip = "www.example.org", "198.18.0.10"
    tags = ["classic", "depth=0"]
    queries = [
        DNSQuery(
            answers=[DNSAnswer(answer_type="A", ipv4=ip, asn=0, as_org_name="")],
            engine="getaddrinfo",
            hostname=host,
            query_type="ANY",
            resolver_address="",
            t0=0.001,
            t=0.0123,
            tags=tags,
            transaction_id=1,
        ),
        DNSQuery(
            answers=[DNSAnswer(answer_type="A", ipv4=ip, ttl=300)],
            engine="udp",
            hostname=host,
            query_type="A",
            resolver_address="198.18.0.53:53",
            raw_response=base64.b64encode(dns_reply(host, ip)).decode("ascii"),
            rcode=0,
            t0=0.001,
            t=0.02,
            tags=["depth=0"],
            transaction_id=2,
        ),
        DNSQuery(
            answers=None,
            engine="udp",
            failure="dns_no_answer",
            hostname=host,
            query_type="AAAA",
            resolver_address="198.18.0.53:53",
            rcode=0,
            t0=0.001,
            t=0.021,
            tags=["depth=0"],
            transaction_id=3,
        ),
    ]
    tcp = [
        TCPConnect(
            ip=ip,
            port=443,
            status=TCPConnectStatus(success=True, failure=None),
            t0=0.03,
            t=0.031,
            tags=tags,
            transaction_id=4,
        ),
        TCPConnect(
            ip="198.18.0.11",
            port=443,
            status=TCPConnectStatus(success=False, failure="connection_refused"),
            t0=0.03,
            t=0.032,
            tags=tags,
            transaction_id=5,
        ),
    ]
    tls = [
        TLSHandshake(
            network="tcp",
            address=f"{ip}:443",
            server_name=host,
            cipher_suite="TLS_AES_256_GCM_SHA384",
            tls_version="TLSv1.3",
            negotiated_protocol="http/1.1",
            no_tls_verify=False,
            peer_certificates=[BinaryData.of(der_certificate())],
            t0=0.032,
            t=0.05,
            tags=tags,
            transaction_id=4,
        )
    ]
    body = "<html><title>Привет</title></html>".encode("windows-1251")  # not UTF-8
    request_headers: list[tuple[str, MaybeBinary]] = [
        ("Accept", "text/html"),
        ("Host", host),
        ("User-Agent", "Mozilla/5.0"),
    ]
    response_headers: list[tuple[str, MaybeBinary]] = [
        ("Content-Type", "text/html; charset=windows-1251"),
        ("Set-Cookie", "a=1"),
        ("X-Bin", BinaryData.of(b"\xff\xfe")),  # a non-UTF-8 header value
    ]
    requests = [
        HTTPTransaction(
            network="tcp",
            address=f"{ip}:443",
            alpn="http/1.1",
            request=HTTPRequest(
                url=f"https://{host}/",
                method="GET",
                headers=dict(request_headers),
                headers_list=request_headers,
                body="",
            ),
            response=HTTPResponse(
                code=200,
                headers=dict(response_headers),
                headers_list=response_headers,
                body=maybe_binary(body),
                body_is_truncated=False,
            ),
            t0=0.05,
            t=0.09,
            tags=tags,
            transaction_id=4,
        )
    ]
    events = [
        NetworkEvent(
            address=f"{ip}:443",
            operation="connect",
            proto="tcp",
            t0=0.03,
            t=0.031,
            tags=tags,
            transaction_id=4,
        ),
        NetworkEvent(
            address=f"{ip}:443",
            operation="bytes_received_cumulative",
            num_bytes=len(body),
            proto="tcp",
            t0=0.08,
            t=0.08,
            tags=tags,
            transaction_id=4,
        ),
    ]
    # our TH's extension (an extra key)
    th_extension: dict[str, Any] = {
        "x_transfer": {"body_length": len(body), "t_first_byte": 0.01, "t_done": 0.02}
    }
    control = ControlResponse(
        tcp_connect={f"{ip}:443": ControlTCPConnect(status=True, failure=None)},
        tls_handshake={f"{ip}:443": ControlTLSHandshake(server_name=host, status=True)},
        http_request=ControlHTTPRequest(
            body_length=len(body),
            failure=None,
            title="Привет",
            headers={"Content-Type": "text/html"},
            status_code=200,
            **th_extension,
        ),
        dns=ControlDNS(failure=None, addrs=[ip]),
        ip_info={ip: ControlIPInfo(asn=0, flags=11)},
    )
    # verdict keys of probe.analysis (extra keys)
    verdict: dict[str, Any] = {"x_outcome": "ok", "x_rule_id": "ok.https", "x_evidence": ["r"]}
    keys = WebConnectivityTestKeys(
        client_resolver="198.18.0.53",
        queries=queries,
        tcp_connect=tcp,
        tls_handshakes=tls,
        requests=requests,
        network_events=events,
        x_control_request=ControlRequest(
            http_request=f"https://{host}/",
            http_request_headers={"Accept": ["text/html"]},
            tcp_connect=[f"{ip}:443"],
        ),
        control=control,
        dns_consistency="consistent",
        body_length_match=True,
        body_proportion=1.0,
        headers_match=True,
        status_code_match=True,
        title_match=True,
        blocking=False,
        accessible=True,
        x_skipped_endpoints=["10.0.0.1:443"],
        **verdict,
    )
    msmt = Measurement(
        annotations=make_annotations(),
        extensions=dict(WEB_CONNECTIVITY_EXTENSIONS),
        id=measurement_id(),
        input=f"https://{host}/",
        measurement_start_time=format_time(now),
        test_start_time=format_time(now),
        probe_asn="AS64496",
        probe_cc="IT",
        report_id=make_report_id(
            test_name="web_connectivity", cc="IT", asn="AS64496", now=now, rng=Random(7)
        ),
        software_name="censorprobe",
        software_version="0.1.0",
        test_helpers={"backend": {"address": "https://198.18.0.80", "type": "https"}},
        test_name="web_connectivity",
        test_keys=keys,
        test_runtime=0.0912,
        test_version="0.5.28",
    )
    return measurement_to_json(msmt)


# --- the checker itself -----------------------------------------------------------------------


def test_real_ooni_samples_pass() -> None:
    # sanity check of the checker: OONI's own data (2016-2025, several probes) conforms
    assert check_with_oonidata(sample_lines()) == []


def test_edge_cases_fail_one_problem_per_broken_line() -> None:
    path = SAMPLES / "edge-cases" / "synthetic-broken-web_connectivity.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    problems = check_with_oonidata(lines)
    for number in range(1, len(lines) + 1):
        assert any(p.startswith(f"line {number}: ") for p in problems), (number, problems)
    # the silently coerced ones are named precisely
    assert "line 5: probe_asn: JSON int 137 given to str" in problems
    assert any(p.startswith("line 6: test_keys.accessible: ") for p in problems)
    assert any(p.startswith("line 8: measurement_start_time: ") for p in problems)


def test_checker_flags_values_oonidata_would_coerce() -> None:
    def spoil(path: list[str | int], value: Any) -> dict[str, Any]:
        msmt = build_measurement()
        node: Any = msmt
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return msmt

    cases = [
        ("test_keys.tcp_connect[0].t0", spoil(["test_keys", "tcp_connect", 0, "t0"], "0.03")),
        ("test_keys.tcp_connect[0].port", spoil(["test_keys", "tcp_connect", 0, "port"], "443")),
        (
            "test_keys.queries[0].answers",
            spoil(["test_keys", "queries", 0, "answers"], {"answer_type": "A"}),
        ),
        ("test_keys.queries[1].rcode", spoil(["test_keys", "queries", 1, "rcode"], 0.0)),
        ("test_runtime", spoil(["test_runtime"], "0.5")),
        (
            "test_keys.requests[0].response.code",
            spoil(["test_keys", "requests", 0, "response", "code"], True),
        ),
        ("annotations.platform", spoil(["annotations", "platform"], 3)),
        (
            "test_keys.network_events[0].transaction_id",
            spoil(["test_keys", "network_events", 0, "transaction_id"], "4"),
        ),
        (
            "test_keys.requests[0].response.headers.X-Bin",
            spoil(["test_keys", "requests", 0, "response", "headers", "X-Bin"], 7),
        ),
    ]
    problems = check_with_oonidata([msmt for _, msmt in cases])
    for number, (path, _) in enumerate(cases, start=1):
        mine = [p for p in problems if p.startswith(f"line {number}: ")]
        assert mine, (path, problems)
        assert any(p.startswith(f"line {number}: {path}: ") for p in mine), (path, mine)


def test_checker_reports_invalid_json_and_missing_keys() -> None:
    msmt = build_measurement()
    del msmt["report_id"]
    problems = check_with_oonidata(['{"test_name": ', json.dumps(msmt)])
    assert any(p.startswith("line 1: invalid JSON") for p in problems)
    assert any("missing required key 'report_id'" in p for p in problems if p.startswith("line 2"))


def test_missing_reference_venv_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ReferenceParserMissing, match="oonidata reference venv"):
        check_with_oonidata(["{}"], python=tmp_path / "no-such-python")


# --- our measurement --------------------------------------------------------------------------


def test_probe_measurement_passes_strictly() -> None:
    msmt = build_measurement()
    assert check_with_oonidata([msmt]) == []
    # every documented key is emitted, null rather than absent
    assert msmt["test_keys"]["control_failure"] is None
    assert msmt["test_keys"]["http_experiment_failure"] is None
    assert msmt["probe_ip"] == "127.0.0.1"


def test_probe_measurement_still_passes_after_scrubbing_and_reloading() -> None:
    msmt = build_measurement()
    scrubbed = scrub_measurement(msmt, probe_ips=["198.18.0.10"])
    assert "198.18.0.10" not in json.dumps(scrubbed)
    reloaded = measurement_to_json(Measurement.model_validate(scrubbed))
    assert check_with_oonidata([scrubbed, reloaded]) == []
