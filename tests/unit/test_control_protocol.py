"""TH protocol helpers: request validation, legacy failure vocabulary, title and headers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probe.control import protocol as p


def parse(obj: object, max_endpoints: int = 8) -> p.Target:
    return p.parse_request(json.dumps(obj).encode(), max_endpoints=max_endpoints)


def test_valid_request_keeps_probe_ips_and_forwards_three_headers() -> None:
    t = parse(
        {
            "http_request": "http://Example.ORG./path?q=1",
            "http_request_headers": {
                "user-agent": ["UA", "other"],
                "Cookie": ["x"],
                "Accept-Language": ["en"],
            },  # fmt: skip
            "tcp_connect": ["192.0.2.1:80", "[2001:db8::1]:80", "192.0.2.1:443"],
            "x_quic_enabled": False,
            "x_future_key": 1,
        }
    )
    assert t.host == "example.org" and t.scheme == "http" and t.port is None
    assert t.ports == (80, 443)
    assert t.probe_ips == ("192.0.2.1", "2001:db8::1")
    assert t.headers == (("User-Agent", "UA"), ("Accept-Language", "en"))


def test_ports_follow_the_spec() -> None:
    assert parse({"http_request": "https://a.example/"}).ports == (443,)
    assert parse({"http_request": "http://a.example:8080/"}).ports == (8080,)
    assert parse({"http_request": "https://[2001:db8::1]:8443/"}).host == "2001:db8::1"


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"http_request": "javascript:alert(1)"}, "bad_url"),
        ({"http_request": "http://user:pw@a.example/"}, "bad_url"),
        ({"http_request": "http://a.example:0/"}, "bad_url"),
        ({"http_request": "http://a.example:70000/"}, "bad_url"),
        ({"http_request": "http://a..example/"}, "bad_url"),
        ({"http_request": "http://a.example/\r\nX: y"}, "bad_url"),
        ({"http_request": "http://a.example/" + "a" * 5000}, "bad_url"),
        ({"http_request": "http://a.example/", "tcp_connect": ["[::1%lo]:80"]}, "bad_endpoint"),
        ({"http_request": "http://a.example/", "tcp_connect": ["1.2.3.4:0"]}, "bad_endpoint"),
        ({"http_request": "http://a.example/", "tcp_connect": [5]}, "bad_request"),
        ({"http_request": "http://a.example/", "x_quic_enabled": "yes"}, "bad_request"),
        (
            {"http_request": "http://a.example/", "http_request_headers": {"Accept": "x"}},
            "bad_request",
        ),  # fmt: skip
        (
            {
                "http_request": "http://a.example/",
                "http_request_headers": {"Accept": ["a\r\nInjected: 1"]},
            },
            "bad_request",
        ),  # fmt: skip
    ],
)
def test_bad_requests(obj: object, code: str) -> None:
    with pytest.raises(p.RequestError) as info:
        parse(obj)
    assert info.value.code == code and info.value.status == 400


@given(st.binary(max_size=300))
def test_parse_request_only_raises_request_error(body: bytes) -> None:
    try:
        p.parse_request(body, max_endpoints=4)
    except p.RequestError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=15), c,
                                                                       max_size=4)))  # fmt: skip
def test_parse_request_is_total_on_json(obj: object) -> None:
    try:
        p.parse_request(json.dumps(obj).encode(), max_endpoints=4)
    except p.RequestError:
        pass


def test_legacy_failure_vocabulary() -> None:
    assert p.dns_failure(None) is None
    assert p.dns_failure("dns_no_answer") is None
    assert p.dns_failure("dns_nxdomain_error") == "dns_name_error"
    for f in ("dns_servfail_error", "dns_refused_error", "dns_server_misbehaving",
              "dns_temporary_failure", "dns_non_recoverable_failure"):  # fmt: skip
        assert p.dns_failure(f) == "dns_server_failure"
    assert p.dns_failure("generic_timeout_error") == "unknown_error"
    assert p.tcp_failure("connection_refused") == "connection_refused_error"
    assert p.tcp_failure("generic_timeout_error") == "generic_timeout_error"
    assert p.tcp_failure("host_unreachable") == "connect_error"
    assert p.http_failure("dns_nxdomain_error") == "dns_lookup_error"
    assert p.http_failure("dns_bogon_error") == "dns_lookup_error"
    assert p.http_failure("connection_refused") == "connection_refused_error"
    assert p.http_failure("generic_timeout_error") == "generic_timeout_error"
    assert p.http_failure("ssl_unknown_authority") == "unknown_error"
    assert p.http_failure("unknown_failure: boom") == "unknown_error"


def test_title_and_headers() -> None:
    assert p.extract_title(b"<html><TITLE lang=en> Hi there </TITLE>") == "Hi there"
    assert p.extract_title(b"<title></title>") == ""
    assert p.extract_title(b"\xff\xfe<title>\xe9t\xe9</title>") == "\ufffdt\ufffd"
    assert p.single_value_headers(
        [("content-type", "a"), ("Content-Type", "b"), ("x-foo-BAR", "c")]
    ) == {"Content-Type": "a", "X-Foo-Bar": "c"}
    failed = p.failed_http_request("unknown_error")
    assert failed["body_length"] == failed["status_code"] == -1 and failed["headers"] == {}
