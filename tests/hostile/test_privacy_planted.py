"""The volunteer's address, planted by a hostile server in every form and every place, is found
nowhere in the written line.

A property test: hypothesis picks the probe's addresses, a written form of one of them (drawn by
an implementation independent of :mod:`probe.privacy.forms`), a place (a body, plain or
compressed with gzip/deflate/br/zstd, binary or text; a header; a cookie; a Location; the request
URL; a certificate's CN, SAN DNS name or IP SAN; a DNS answer and its wire message; an error
string; an app test's keys; a dict key) and the text around it. The measurement goes through the
same publication and line encoding as ``probe run``; the line is then searched for the planted
form, for every canonical form of every address, in its text, in every base64 payload decoded
and for the raw 4/16 bytes in every blob.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import html
import ipaddress
import json
import random
import warnings
import zlib
from functools import lru_cache
from typing import Any

import brotli
import dns.message
import dns.rrset
import orjson
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.archival import Measurement
from probe.privacy import scrub_measurement
from probe.runner import _encode
from tests.unit.test_conformance import build_measurement

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: the volunteer's addresses are drawn from these (few, so compiled publishers are reused)
ADDRESS_SETS = [
    ("203.0.113.77", "2001:db8:1234::77"),
    ("192.0.2.2", "fd00::2"),
    ("100.64.7.9", "2001:db8:0:0:1:0:0:1"),
    ("198.51.100.201",),
    ("2a01:e0a:2b1:4c0:d46b:1e7d:5f2:91a3",),
    ("10.20.30.40", "fe80::fc:ff:fe00:1", "172.16.0.1"),
]

# --- the forms, written independently of probe.privacy.forms ------------------------------------


def _v6_text(addr: ipaddress.IPv6Address, rng: random.Random) -> str:
    """A random valid spelling: which zero run is compressed, leading zeros, letter case."""
    groups = [int(g, 16) for g in addr.exploded.split(":")]
    words = [f"{g:0{rng.randint(len(f'{g:x}'), 4)}x}" for g in groups]
    zero_runs = [
        (i, j) for i in range(8) for j in range(i + 1, 9) if all(g == 0 for g in groups[i:j])
    ]
    if zero_runs and rng.random() < 0.7:
        i, j = rng.choice(zero_runs)
        text = ":".join(words[:i]) + "::" + ":".join(words[j:])
    else:
        text = ":".join(words)
    return text.upper() if rng.random() < 0.3 else text


def _forms(addr: IPAddress, rng: random.Random) -> dict[str, str]:
    if isinstance(addr, ipaddress.IPv4Address):
        a, b, c, d = addr.packed
        n = int(addr)
        mapped = ipaddress.IPv6Address(0xFFFF << 32 | n)
        return {
            "canonical": str(addr),
            "mapped-hex": _v6_text(mapped, rng),
            "mapped-dotted": f"::ffff:{addr}",
            "mapped-exploded": mapped.exploded.upper(),
            "nat64": f"64:ff9b::{addr}",
            "6to4": f"2002:{n >> 16:x}:{n & 0xFFFF:x}::1",
            "dashed-ip": f"ip-{a}-{b}-{c}-{d}",
            "dashed-dyn": f"{a}-{b}-{c}-{d}.dyn.example.net",
            "underscored": f"host_{a}_{b}_{c}_{d}",
            "reverse-dns": f"{d}.{c}.{b}.{a}.in-addr.arpa",
            "reverse-dashed": f"{d}-{c}-{b}-{a}.pool.example",
            "integer": str(n),
            "hex": f"0x{n:08X}" if rng.random() < 0.5 else f"0x{n:x}",
            "octal-dotted": f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
            "zero-padded": f"{a:03d}.{b:03d}.{c:03d}.{d:03d}",
            "url-dots": f"{a}%2E{b}%2e{c}%2E{d}",
            "percent-all": "".join(f"%{ord(ch):02X}" for ch in str(addr)),
            "html-entities": "".join(f"&#{ord(ch)};" for ch in str(addr)),
            "js-escapes": "".join(f"\\u{ord(ch):04x}" for ch in str(addr)),
        }
    text = _v6_text(addr, rng)
    nibbles = addr.exploded.replace(":", "")
    return {
        "canonical": str(addr),
        "non-canonical": text,
        "exploded": addr.exploded,
        "exploded-upper": addr.exploded.upper(),
        "no-leading-zeros": ":".join(f"{int(g, 16):x}" for g in addr.exploded.split(":")),
        "dashed": text.replace(":", "-") + ".ipv6-literal.net",
        "url-colons": text.replace(":", "%3A"),
        "bracketed-port": f"[{text}]:443",
        "zone": f"{text}%eth0",
        "reverse-dns": ".".join(reversed(nibbles)) + ".ip6.arpa",
        "plain-hex": nibbles,
        "percent-all": "".join(f"%{ord(ch):02x}" for ch in str(addr)),
        "html-entities": "".join(f"&#x{ord(ch):x};" for ch in str(addr)),
    }


# --- places -------------------------------------------------------------------------------------

PLACES = [
    "body", "body-gzip", "body-deflate", "body-br", "body-zstd", "body-gzip-twice",
    "body-binary", "header", "cookie", "location", "request-url", "request-header",
    "cert-cn", "cert-san-dns", "cert-ip-san", "dns-answer", "error", "failure-other",
    "app-keys", "dict-key", "control",
]  # fmt: skip


@lru_cache(maxsize=1)
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    *, cn: str = "site.example", dns_name: str = "site.example", ip: str = ""
) -> bytes:
    key = _key()
    # a hostile CA signs what it likes, a CN longer than 64 characters too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)])
    alt: list[x509.GeneralName] = [x509.DNSName(dns_name)]
    if ip:
        alt.append(x509.IPAddress(ipaddress.ip_address(ip)))
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _b64(raw: bytes) -> dict[str, str]:
    return {"format": "base64", "data": base64.b64encode(raw).decode()}


def _set_body(tx: dict[str, Any], body: Any, coding: str = "") -> None:
    response = tx["response"]
    response["body"] = body
    if coding:
        response["headers_list"].append(["Content-Encoding", coding])
        response["headers"]["Content-Encoding"] = coding


def _plant(msmt: dict[str, Any], place: str, text: str, addr: IPAddress) -> None:
    tk = msmt["test_keys"]
    tx = tk["requests"][0]
    page = f"<html><body><p>you are {text}</p></body></html>".encode()
    if place == "body":
        _set_body(tx, page.decode())
    elif place == "body-gzip":
        _set_body(tx, _b64(gzip.compress(page)), "gzip")
    elif place == "body-deflate":
        _set_body(tx, _b64(zlib.compress(page)), "deflate")
    elif place == "body-br":
        _set_body(tx, _b64(brotli.compress(page)), "br")
    elif place == "body-zstd":
        _set_body(tx, _b64(zstandard.ZstdCompressor().compress(page)), "zstd")
    elif place == "body-gzip-twice":
        _set_body(tx, _b64(gzip.compress(gzip.compress(page))), "gzip, gzip")
    elif place == "body-binary":
        _set_body(tx, _b64(b"\x89PNG\r\n\x1a\n\xff" + page + b"\x00\xfe"))
    elif place == "header":
        tx["response"]["headers_list"].append(["X-Client-IP", text])
        tx["response"]["headers"]["X-Client-IP"] = text
    elif place == "cookie":
        tx["response"]["headers_list"].append(["Set-Cookie", f"seen={text}; Path=/; HttpOnly"])
    elif place == "location":
        tx["response"]["headers_list"].append(["Location", f"http://example.org/?from={text}"])
    elif place == "request-url":
        tx["request"]["url"] = f"http://example.org/echo/{text}"
    elif place == "request-header":
        tx["request"]["headers_list"].append(["X-Forwarded-For", text])
    elif place in ("cert-cn", "cert-san-dns", "cert-ip-san"):
        der = _certificate(
            cn=text if place == "cert-cn" else "site.example",
            dns_name=text if place == "cert-san-dns" else "site.example",
            ip=str(addr) if place == "cert-ip-san" else "",
        )
        tk["tls_handshakes"][0]["peer_certificates"] = [_b64(der)]
    elif place == "dns-answer":
        query = dns.message.make_query("whoami.example", "A" if addr.version == 4 else "AAAA")
        reply = dns.message.make_response(query)
        rtype = "A" if addr.version == 4 else "AAAA"
        reply.answer.append(dns.rrset.from_text("whoami.example.", 60, "IN", rtype, str(addr)))
        tk["queries"][1]["raw_response"] = base64.b64encode(reply.to_wire()).decode()
        key = "ipv4" if addr.version == 4 else "ipv6"
        tk["queries"][1]["answers"] = [{"answer_type": rtype, key: text, "ttl": 60}]
        tk["queries"][1]["hostname"] = f"echo.{text}.example"
    elif place == "error":
        tk["x_failure"] = f"unknown_failure: dial tcp {text}:5123->198.18.0.10:443: refused"
    elif place == "failure-other":
        tx["failure"] = f"read tcp {text}: connection reset"
    elif place == "app-keys":
        tk["x_hosts"] = [{"id": "api", "x_details": {"echo": [f"client={text}"]}}]
    elif place == "dict-key":
        tk["control"]["tcp_connect"][f"{text}:443"] = {"status": True, "failure": None}
    elif place == "control":
        tk["control"]["http_request"]["title"] = f"Your IP: {text}"
    else:
        raise AssertionError(place)


# --- the check ----------------------------------------------------------------------------------


def _payloads(value: Any) -> list[bytes]:
    """Every base64 payload of the document, decoded."""
    out: list[bytes] = []
    if isinstance(value, dict):
        if value.get("format") == "base64" and isinstance(value.get("data"), str):
            out.append(base64.b64decode(value["data"]))
        for key, item in value.items():
            if key == "raw_response" and isinstance(item, str):
                out.append(base64.b64decode(item))
            out.extend(_payloads(item))
    elif isinstance(value, list):
        for item in value:
            out.extend(_payloads(item))
    return out


def _canonical(addr: IPAddress) -> list[str]:
    out = [str(addr), addr.exploded]
    if isinstance(addr, ipaddress.IPv4Address):
        out.append(str(int(addr)))
        out.append(f"{int(addr):x}")
    return out


def assert_nowhere(line: bytes, planted: str, addresses: list[IPAddress]) -> None:
    doc = json.loads(line)
    texts = [line.decode("utf-8").lower()]
    blobs = _payloads(doc)
    texts += [b.decode("latin-1").lower() for b in blobs]
    views = []
    for text in texts:
        views += [text, html.unescape(text)]
    needles = {planted.lower()} | {f.lower() for a in addresses for f in _canonical(a)}
    for view in views:
        for needle in needles:
            assert needle not in view, needle
    for blob in blobs:
        for addr in addresses:
            assert addr.packed not in blob, addr


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    ips=st.sampled_from(ADDRESS_SETS),
    which=st.integers(min_value=0, max_value=2),
    place=st.sampled_from(PLACES),
    form_seed=st.integers(min_value=0, max_value=2**32),
    form_index=st.integers(min_value=0, max_value=30),
    before=st.text(alphabet=" \n\t\"'<>=,;()[]{}/\\\x00\x1b\u00e9\u2028xyz", max_size=4),
    after=st.text(alphabet=" \n\t\"'<>=,;()[]{}/\\\x00\x1b\u00e9\u2028xyz.:", max_size=4),
)
def test_planted_address_is_found_nowhere(
    ips: tuple[str, ...],
    which: int,
    place: str,
    form_seed: int,
    form_index: int,
    before: str,
    after: str,
) -> None:
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    addr = addresses[which % len(addresses)]
    forms = _forms(addr, random.Random(form_seed))
    name = sorted(forms)[form_index % len(forms)]
    planted = forms[name]
    text = before + planted + after
    if place.startswith("cert-") and not (text.isascii() and text.isprintable()):
        text = planted  # X.509 strings here: printable ASCII
    if place == "cert-ip-san":
        planted = str(addr)
    msmt = build_measurement()
    _plant(msmt, place, text, addr)
    published = scrub_measurement(msmt, probe_ips=list(ips), decoded_cap=1 << 19)
    line = _encode(published)
    assert_nowhere(line, planted, addresses)
    Measurement.model_validate(orjson.loads(line))  # still a valid measurement


def test_every_form_and_place_once() -> None:
    """The whole grid, deterministically (the property test samples it)."""
    for ips in ADDRESS_SETS:
        addresses = [ipaddress.ip_address(ip) for ip in ips]
        for addr in addresses:
            for name, planted in _forms(addr, random.Random(7)).items():
                for place in PLACES:
                    msmt = build_measurement()
                    _plant(msmt, place, f" {planted} ", addr)
                    published = scrub_measurement(msmt, probe_ips=list(ips))
                    try:
                        assert_nowhere(_encode(published), planted, addresses)
                    except AssertionError as exc:
                        raise AssertionError(f"{addr} {name} in {place}: {exc}") from None
