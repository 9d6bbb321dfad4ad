"""The fast readers of URLs and addresses give what the standard library gives."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from probe.analysis.urls import BAD_PORT, url_parts
from probe.netaddr import (
    endpoint_host,
    is_bogon,
    is_ip,
    join_endpoint,
    parse_ip,
    split_endpoint,
)


def reference(url: str) -> tuple[str, str | None, int | None] | str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "ValueError"
    try:
        port = parts.port
    except ValueError:
        port = BAD_PORT
    return parts.scheme, parts.hostname, port


def ours(url: str) -> tuple[str, str | None, int | None] | str:
    try:
        return url_parts(url)
    except ValueError:
        return "ValueError"


#: URL-ish pieces: the characters that change how urlsplit reads a URL, and plain ones
pieces = st.sampled_from(
    ["http", "HTTPS", "ftp", "h+t.t-p", "1x", "://", ":", "//", "/", "?", "#", "@", "[", "]",
     "%", "%25", "::1", "[::1]", "[fe80::1%eth0]", "example.org", "EXAMPLE.Org", "xn--e1afmkfd",
     "Яндекс.рф", "a_b", "a-b", ".", "80", "443", "65535", "65536", "0080", "123456", "",
     " ", "\t", "\n", "\r", "\x00", "\x1f", "user:pw@", "?q=1", "#frag", "/path", "\u212a", "１"]
)  # fmt: skip


@given(st.lists(pieces, max_size=8).map("".join) | st.text(max_size=40))
@example("http://example.org/")
@example("https://Example.ORG:8443/a?b#c")
@example("http://example.org:/")
@example("http://:80/")
@example("http:///x")
@example("http://example.org:65536/")
@example("http://example.org:123456/")
@example("http://exa\tmple.org/")
@example(" http://example.org/")
@example("http://[::1]:80/")
@example("http://[::1/")
@example("http://user@example.org/")
@example("http://Яндекс.рф/")
def test_url_parts_is_urlsplit(url: str) -> None:
    assert ours(url) == reference(url)


def test_url_parts_fast_path_gives_the_expected_parts() -> None:
    assert url_parts("HTTPS://Example.ORG:8443/a?b#c") == ("https", "example.org", 8443)
    assert url_parts("http://example.org") == ("http", "example.org", None)
    assert url_parts("http://example.org:99999/") == ("http", "example.org", BAD_PORT)


octets = st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "007", "", "-1", "1a", "٣"])


@given(
    st.lists(octets, min_size=1, max_size=5).map(".".join)
    | st.ip_addresses().map(str)
    | st.text(alphabet="0123456789abcdef:.[]% ", max_size=45)
)
@example("1.2.3.4")
@example("255.255.255.255")
@example("256.1.1.1")
@example("01.2.3.4")
@example(" 1.2.3.4 ")
@example("[::1]")
@example("fe80::1%eth0")
def test_is_ip_is_parse_ip(text: str) -> None:
    assert is_ip(text) == (parse_ip(text) is not None)


def test_bogons_and_public_ranges() -> None:
    assert is_bogon("10.1.2.3") and is_bogon("::1") and is_bogon("::ffff:127.0.0.1")
    assert not is_bogon("8.8.8.8") and not is_bogon("example.org")
    assert is_bogon("198.18.0.1")
    assert not is_bogon("198.18.0.1", [ipaddress.ip_network("198.18.0.0/15")])


# --- the one endpoint parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("1.2.3.4:443", None, ("1.2.3.4", 443)),
        ("[::1]:53", None, ("::1", 53)),
        ("host.test:8080", None, ("host.test", 8080)),
        ("1.2.3.4", 53, ("1.2.3.4", 53)),
        ("[::1]", 53, ("::1", 53)),
        ("::1", 53, ("::1", 53)),
        ("fe80::1%eth0", 53, ("fe80::1%eth0", 53)),
        ("host.test", 53, ("host.test", 53)),
        ("1.2.3.4:0", None, ("1.2.3.4", 0)),
        ("1.2.3.4:65535", None, ("1.2.3.4", 65535)),
    ],
)
def test_split_endpoint(text: str, default: int | None, expected: tuple[str, int]) -> None:
    assert split_endpoint(text, default_port=default) == expected


@pytest.mark.parametrize(
    "text",
    ["1.2.3.4", "[::1]", "host", ":443", "[::1]443", "[::1", "1.2.3.4:65536", "1.2.3.4:",
     "1.2.3.4:-1", "1.2.3.4:٤٤٣", "h:123456", ""],
)  # fmt: skip
def test_split_endpoint_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        split_endpoint(text)


@given(
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
    st.integers(min_value=0, max_value=65535),
)
def test_join_then_split_round_trips(ip: str, port: int) -> None:
    assert split_endpoint(join_endpoint(ip, port)) == (ip, port)
    assert endpoint_host(join_endpoint(ip, port)) == ip


@given(st.text(max_size=40))
def test_split_endpoint_is_total(text: str) -> None:
    try:
        host, port = split_endpoint(text, default_port=53)
    except ValueError:
        return
    assert host and 0 <= port <= 65535
