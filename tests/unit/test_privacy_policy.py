"""The publication policy field by field: decoded bodies, withheld blobs with their reasons,
bounded decoding (bombs), certificates, DNS messages, and the unchanged shape with include_ip."""

from __future__ import annotations

import base64
import gzip
import ipaddress
import zlib
from typing import Any

import brotli
import pytest
import zstandard

from probe.privacy import WITHHELD, Publisher, scrub_measurement
from probe.privacy.content import codings_of, decode_body
from probe.privacy.forms import anchors, forms_pattern, parse_addresses
from tests.hostile.test_privacy_planted import _certificate
from tests.unit.test_conformance import build_measurement

V4 = "192.0.2.2"
V6 = "fd00::2"
CAP = 1 << 16


def _b64(raw: bytes) -> dict[str, str]:
    return {"format": "base64", "data": base64.b64encode(raw).decode()}


def _response(body: Any, coding: str = "") -> dict[str, Any]:
    msmt = build_measurement()
    response = msmt["test_keys"]["requests"][0]["response"]
    response["body"] = body
    if coding:
        response["headers_list"].append(["content-encoding", coding])
    return msmt


def _publish(msmt: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return Publisher([V4, V6], decoded_cap=CAP, **kw).publish(msmt)


def _published_response(out: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = out["test_keys"]["requests"][0]["response"]
    return response


PAGE = f"<html><body>your address is {V4} ({V6})</body></html>".encode()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),
        ("br", brotli.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
        ("GZIP", gzip.compress),
    ],
)
def test_encoded_bodies_are_published_decoded_and_scrubbed(coding: str, encode: Any) -> None:
    out = _publish(_response(_b64(encode(PAGE)), coding))
    response = _published_response(out)
    assert response["body"] == "<html><body>your address is [scrubbed] ([scrubbed])</body></html>"
    assert response["x_body_decoded"] == coding.lower()
    assert response["body_is_truncated"] is False
    assert "x_withheld" not in out["test_keys"]


@pytest.mark.parametrize(
    ("coding", "raw", "why"),
    [
        ("compress", b"\x1f\x9d\x90...", "unsupported content-encoding 'compress'"),
        ("gzip", b"plain text, not gzip at all", "not gzip data"),
        ("br", b"\xff" * 40, "br body cannot be decoded"),
        ("zstd", b"not zstd", "zstd body cannot be decoded"),
        ("gzip, gzip, gzip, gzip, gzip", b"x", "5 content codings"),
    ],
)
def test_undecodable_bodies_are_withheld_saying_why(coding: str, raw: bytes, why: str) -> None:
    out = _publish(_response(_b64(raw), coding))
    response = _published_response(out)
    assert response["body"] == ""
    assert why in response["x_body_withheld"]
    assert "cannot be checked" in response["x_body_withheld"]
    (entry,) = out["test_keys"]["x_withheld"]
    assert entry["path"] == "$.test_keys.requests[0].response.body"


def test_a_compression_bomb_is_decoded_to_the_cap_only() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB in ~64 KiB
    decoded = decode_body(bomb, ["gzip"], cap=CAP)
    assert len(decoded.data) == CAP and decoded.truncated and decoded.problem is None
    out = _publish(_response(_b64(bomb), "gzip"))
    response = _published_response(out)
    assert response["body_is_truncated"] is True
    assert (
        len(base64.b64decode(response["body"]["data"])) == CAP
        if isinstance(response["body"], dict)
        else len(response["body"]) == CAP
    )
    for coding, packed in (
        ("br", brotli.compress(b"\0" * (64 << 20))),
        ("zstd", zstandard.ZstdCompressor().compress(b"\0" * (64 << 20))),
        ("deflate", zlib.compress(b"\0" * (64 << 20))),
    ):
        decoded = decode_body(packed, [coding], cap=CAP)
        assert len(decoded.data) == CAP and decoded.truncated, coding


def test_a_cut_body_is_published_as_the_prefix_it_holds() -> None:
    whole = gzip.compress(PAGE * 200)
    out = _publish(_response(_b64(whole[:-12]), "gzip"))  # the trailer and a bit of data
    response = _published_response(out)
    assert response["body_is_truncated"] is True
    assert response["body"].startswith("<html><body>your address is [scrubbed]")
    assert V4 not in response["body"]


@pytest.mark.parametrize("cut", ["192.0.2", "192.0.", "fd00:", "192-0-2", "0xc0"])
def test_a_body_cut_in_the_middle_of_an_address_loses_the_start_of_it(cut: str) -> None:
    msmt = _response(f"<p>you are {cut}")
    msmt["test_keys"]["requests"][0]["response"]["body_is_truncated"] = True
    assert _published_response(_publish(msmt))["body"] == "<p>you are "
    reset = _response(f"<p>you are {cut}")  # a reset in the middle of the body
    reset["test_keys"]["requests"][0]["failure"] = "connection_reset"
    assert _published_response(_publish(reset))["body"] == "<p>you are "
    whole = _response(f"<p>you are {cut}")  # a whole body is not touched
    assert _published_response(_publish(whole))["body"] == f"<p>you are {cut}"


def test_codings_are_read_from_headers_list_or_headers() -> None:
    assert codings_of([("Content-Encoding", "gzip, identity, br"), ("X", "y")]) == ["gzip", "br"]
    msmt = _response(_b64(gzip.compress(PAGE)))
    response = msmt["test_keys"]["requests"][0]["response"]
    del response["headers_list"]
    response["headers"] = {"Content-Encoding": "gzip"}
    assert "[scrubbed]" in _published_response(_publish(msmt))["body"]


def test_include_ip_decodes_but_keeps_everything() -> None:
    msmt = _response(_b64(gzip.compress(PAGE)), "gzip")
    msmt["probe_ip"] = V4
    out = _publish(msmt, include_ip=True)
    response = _published_response(out)
    assert response["body"] == PAGE.decode() and response["x_body_decoded"] == "gzip"
    assert out["probe_ip"] == V4


def test_certificates_naming_the_address_are_withheld() -> None:
    msmt = build_measurement()
    clean = _certificate()
    chain = [
        _b64(clean),
        _b64(_certificate(ip=V4)),
        _b64(_certificate(cn=f"{V4.replace('.', '-')}.dyn.example")),
        _b64(_certificate(dns_name=f"ip-{V4.replace('.', '-')}.example")),
    ]
    msmt["test_keys"]["tls_handshakes"][0]["peer_certificates"] = chain
    out = _publish(msmt)
    published = out["test_keys"]["tls_handshakes"][0]["peer_certificates"]
    assert published[0] == chain[0]
    assert "raw bytes" in published[1]["x_withheld"]
    for cert in published[1:]:
        assert cert["data"] == "" and cert["format"] == "base64"
    paths = [w["path"] for w in out["test_keys"]["x_withheld"]]
    assert paths == [f"$.test_keys.tls_handshakes[0].peer_certificates[{i}]" for i in (1, 2, 3)]


def test_text_hiding_the_address_is_withheld_whole() -> None:
    msmt = build_measurement()
    tx = msmt["test_keys"]["requests"][0]
    encoded = "".join(f"%{ord(c):02X}" for c in V4)
    tx["response"]["headers_list"].append(["Location", f"http://x.example/?ip={encoded}"])
    tx["response"]["headers_list"].append(["X-Ent", "".join(f"&#{ord(c)};" for c in V6)])
    tx["response"]["headers_list"].append(["X-Fine", "100% &amp; &#39;quoted&#39;"])
    out = _publish(msmt)
    headers = out["test_keys"]["requests"][0]["response"]["headers_list"]
    assert headers[-3][1] == WITHHELD and headers[-2][1] == WITHHELD
    assert headers[-1][1] == "100% &amp; &#39;quoted&#39;"
    reasons = {w["reason"] for w in out["test_keys"]["x_withheld"]}
    assert reasons == {"the text hides the probe's address in an encoded form"}


def test_binary_data_holding_the_packed_address_is_withheld() -> None:
    packed = ipaddress.ip_address(V4).packed
    out = _publish(_response(_b64(b"\x89PNG\x00" + packed + b"\xff")))
    response = _published_response(out)
    assert response["body"] == "" and "raw bytes" in response["x_body_withheld"]


def test_nothing_to_hide_returns_an_equal_measurement() -> None:
    msmt = build_measurement()
    msmt["probe_ip"] = "127.0.0.1"
    out = scrub_measurement(msmt, probe_ips=["203.0.113.250"])
    assert out == msmt and out is not msmt
    assert out["test_keys"] is not msmt["test_keys"]  # verdicts may be added to the copy


def test_every_form_contains_an_anchor() -> None:
    """The scrubber skips runs without an anchor: each form it matches must contain one."""
    import re

    addresses = parse_addresses(
        ["192.0.2.2", "10.1.2.3", "2001:db8:1234::77", "fe80::1", "::ffff:1.2.3.4"]
    )
    bounded, _ = forms_pattern(addresses) or ("", "")
    pattern = re.compile(bounded, re.IGNORECASE)
    literals = anchors(addresses)
    samples = [
        "192.0.2.2", "0300.0.02.02", "0xc0.0.2.2", "3221225986", "0xC0000202", "030000001002",
        "192.0.514", "192.514", "2.2.0.192", "192-0-2-2", "10.1.2.3", "10.1.515", "0xa.1.2.3",
        "167838211", "0xa010203", "3.2.1.10", "::ffff:c000:202", "::FFFF:192.0.2.2",
        "64:ff9b::c000:202", "::c000:202", "::192.0.2.2", "2002:c000:202::1", "2001:db8:1234::77",
        "2001:0db8:1234:0:0:0:0:0077", "20010db8123400000000000000000077",
        "7.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.3.2.1.8.b.d.0.1.0.0.2", "fe80::1",
        "fe80:0:0:0:0:0:0:1", "fe80::0.0.0.1", "::ffff:0102:0304", "::ffff:1.2.3.4",
    ]  # fmt: skip
    for sample in samples:
        assert pattern.fullmatch(sample), sample
        assert any(a in sample.lower() for a in literals), sample


def test_withheld_fields_still_parse_with_ooni_tools() -> None:
    from tests.conformance.check import check_with_oonidata

    msmt = _response(_b64(b"\x1f\x8b garbage"), "gzip")
    msmt["test_keys"]["tls_handshakes"][0]["peer_certificates"] = [_b64(_certificate(ip=V4))]
    msmt["test_keys"]["requests"][0]["response"]["headers_list"].append(["X-IP", "%31" + V4[1:]])
    out = _publish(msmt)
    assert len(out["test_keys"]["x_withheld"]) == 3
    assert check_with_oonidata([out]) == []
