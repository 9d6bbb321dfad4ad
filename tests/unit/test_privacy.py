"""probe.privacy: the probe's own addresses vanish from everything written, JSON stays valid."""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
import subprocess
from typing import Any

import dns.message
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.archival import (
    BinaryData,
    HTTPRequest,
    HTTPResponse,
    HTTPTransaction,
    Measurement,
    maybe_binary_bytes,
)
from probe.privacy import (
    SCRUBBED,
    Scrubber,
    local_addresses,
    parse_fib_trie,
    parse_if_inet6,
    parse_ip_json,
    scrub_measurement,
)
from probe.privacy.forms import parse_addresses
from tests import system
from tests.unit.test_conformance import build_measurement

V4 = "203.0.113.77"
V6 = "2001:db8:1234::77"
SERVER = "198.18.0.10"


def _dns_reply(host: str, ips: list[str]) -> bytes:
    reply = dns.message.make_response(dns.message.make_query(host, "A"))
    reply.answer.append(dns.rrset.from_text(host + ".", 60, "IN", "A", *ips))
    return reply.to_wire()


def planted() -> dict[str, Any]:
    """A real-shaped measurement with the probe's addresses planted everywhere they can leak."""
    msmt = build_measurement()
    tk = msmt["test_keys"]
    body = f"<p>Your IP is {V4} ({V6})</p>".encode("cp1251") + b"\xff"
    tx = HTTPTransaction(
        address=f"{SERVER}:80",
        failure=f"unknown_failure: read tcp {V4}:5123->{SERVER}:80: weird",
        request=HTTPRequest(
            url=f"http://whoami.example/?ip={V4}",
            headers={"X-Forwarded-For": V4},
            headers_list=[("X-Forwarded-For", V4), ("X-Real-IP", f"[{V6}]:5123")],
        ),
        response=HTTPResponse(
            code=200,
            headers={"X-Client": f"{V6.upper()}"},
            headers_list=[
                ("X-Client", V6.upper()),
                ("X-Bin", BinaryData.of(V4.encode() + b"\xff")),
            ],
            body=BinaryData.of(body),
        ),
        t0=0.1,
        t=0.2,
        transaction_id=9,
    ).model_dump(mode="json")
    tk["requests"].insert(0, tx)
    tk["requests"][1]["response"]["body"] = f"plain body mentioning {V4}."
    tk["queries"].append(
        {
            **tk["queries"][1],
            "hostname": "whoami.example",
            "answers": [{"answer_type": "A", "ipv4": V4, "ttl": 60, "asn": 0, "as_org_name": ""}],
            "raw_response": base64.b64encode(_dns_reply("whoami.example", [V4, SERVER])).decode(),
        }
    )
    tk["queries"].append(
        {**tk["queries"][1], "hostname": ipaddress.ip_address(V6).reverse_pointer, "answers": []}
    )
    tk["control"]["tcp_connect"][f"{V4}:443"] = {"status": False, "failure": "connect_error"}
    tk["x_local_addr"] = f'{ipaddress.ip_address(V6).exploded} and {V4}\x1b{V4}\\{V4}"{V4}'
    msmt["probe_ip"] = V4
    return msmt


def _assert_gone(doc: Any) -> None:
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False)):
        for form in (V4, V6, V6.upper(), ipaddress.ip_address(V6).exploded):
            assert form not in text
        assert ipaddress.ip_address(V6).reverse_pointer not in text


def test_planted_addresses_vanish_everywhere() -> None:
    msmt = planted()
    before = json.dumps(msmt)
    out = scrub_measurement(msmt, probe_ips=[V4, V6])
    assert json.dumps(msmt) == before  # the input is not modified
    _assert_gone(out)
    assert out["probe_ip"] == "127.0.0.1"
    tk = out["test_keys"]
    tx = tk["requests"][0]
    # header values, headers_list, URL
    assert tx["request"]["headers"]["X-Forwarded-For"] == SCRUBBED
    assert tx["request"]["headers_list"][1] == ["X-Real-IP", f"[{SCRUBBED}]:5123"]
    assert tx["response"]["headers"]["X-Client"] == SCRUBBED
    assert tx["request"]["url"] == f"http://whoami.example/?ip={SCRUBBED}"
    # the binary body: decoded, scrubbed, re-encoded; the other bytes are intact
    body = maybe_binary_bytes(BinaryData.model_validate(tx["response"]["body"]))
    assert body == f"<p>Your IP is {SCRUBBED} ({SCRUBBED})</p>".encode("cp1251") + b"\xff"
    header_bin = BinaryData.model_validate(tx["response"]["headers_list"][1][1])
    assert maybe_binary_bytes(header_bin) == SCRUBBED.encode() + b"\xff"
    # plain body
    assert tk["requests"][1]["response"]["body"] == f"plain body mentioning {SCRUBBED}."
    # unknown_failure text loses every address, ours and the server's
    assert tx["failure"] == f"unknown_failure: read tcp {SCRUBBED}->{SCRUBBED}: weird"
    # the DNS answer is scrubbed; the wire reply that holds the address is withheld, saying why
    whoami = tk["queries"][-2]
    assert whoami["answers"][0]["ipv4"] == SCRUBBED
    assert whoami["raw_response"] is None
    assert "A/AAAA record" in whoami["x_raw_response_withheld"]
    assert {"path": "$.test_keys.queries[3].raw_response", "reason": whoami[
        "x_raw_response_withheld"]} in tk["x_withheld"]  # fmt: skip
    assert tk["queries"][-1]["hostname"] == f"{SCRUBBED}.ip6.arpa"
    # dict keys too
    assert f"{SCRUBBED}:443" in tk["control"]["tcp_connect"]
    # the server's address is evidence, not ours: it stays outside failure texts
    assert tx["address"] == f"{SERVER}:80"
    assert tk["tcp_connect"][0]["ip"] == SERVER
    # still a valid measurement for our model
    Measurement.model_validate(out)


def test_include_ip_keeps_everything() -> None:
    msmt = planted()
    out = scrub_measurement(msmt, probe_ips=[V4, V6], include_ip=True)
    assert out == msmt and out is not msmt
    assert out["probe_ip"] == V4


def test_scrubbing_does_not_touch_longer_addresses() -> None:
    s = Scrubber(parse_addresses(["10.1.2.3", "fd00::2"]))
    text = "110.1.2.3 10.1.2.34 10.1.2.3.4 fd00::23 afd00::2 10.1.2.3: fd00::2."
    assert s.text(text) == (
        f"110.1.2.3 10.1.2.34 10.1.2.3.4 fd00::23 afd00::2 {SCRUBBED}: {SCRUBBED}."
    )
    assert s.text("::ffff:10.1.2.3") == SCRUBBED  # the mapped form goes whole
    assert s.text("FD00:0000:0000:0000:0000:0000:0000:0002") == SCRUBBED
    assert s.text("fd00:0:0:0:0:0:0:2") == SCRUBBED


def test_no_addresses_means_only_probe_ip_changes() -> None:
    msmt = build_measurement()
    msmt["probe_ip"] = "192.0.2.1"
    out = scrub_measurement(msmt, probe_ips=[])
    assert out == {**msmt, "probe_ip": "127.0.0.1"}


_SEPARATORS = st.sampled_from(list(" \n\t\"\\/<>=,;()[]{}'\x00\x1b\u00e9\u2028\U0001f600"))
_ip = st.one_of(  # the unspecified addresses name nobody and are never scrubbed
    st.ip_addresses(v=4).filter(lambda a: not a.is_unspecified).map(str),
    st.ip_addresses(v=6).filter(lambda a: not a.is_unspecified).map(lambda a: a.compressed),
    st.ip_addresses(v=6).filter(lambda a: not a.is_unspecified).map(lambda a: a.exploded.upper()),
)


@st.composite
def planted_text(draw: st.DrawFn, ip: str) -> str:
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        parts.append(draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=8)))
        parts.append(draw(_SEPARATORS) + ip + draw(_SEPARATORS))
    return "".join(parts)


@settings(deadline=None)  # a new address compiles its forms (a fraction of a second)
@given(data=st.data(), ip=_ip, where=st.sampled_from(["body", "binary", "key", "failure"]))
def test_scrubbing_never_breaks_json_and_removes_the_ip(
    data: st.DataObject, ip: str, where: str
) -> None:
    text = data.draw(planted_text(ip))
    msmt: dict[str, Any] = {"probe_ip": "127.0.0.1", "test_keys": {"x": [1, 2.5, None, True]}}
    if where == "body":
        msmt["test_keys"]["body"] = text
    elif where == "binary":
        payload = text.encode("utf-8") + b"\xff\xfe"
        msmt["test_keys"]["body"] = BinaryData.of(payload).model_dump(mode="json")
    elif where == "key":
        msmt["test_keys"][text] = text
    else:
        msmt["test_keys"]["failure"] = "unknown_failure: " + text
    out = scrub_measurement(msmt, probe_ips=[ip])
    for serialized in (json.dumps(out), json.dumps(out, ensure_ascii=False)):
        assert json.loads(serialized) == out  # still valid JSON, same content
    if where == "binary":
        raw = base64.b64decode(out["test_keys"]["body"]["data"])
        assert raw.endswith(b"\xff\xfe")
        remaining = raw.decode("utf-8", errors="replace")
    else:
        # probe_ip is forced to 127.0.0.1, which hypothesis may also pick as the address
        rest = {k: v for k, v in out.items() if k != "probe_ip"}
        remaining = json.dumps(rest, ensure_ascii=False)
    forms = {ip, str(ipaddress.ip_address(ip)), ipaddress.ip_address(ip).exploded}
    for form in forms:
        assert form.lower() not in remaining.lower()
    assert out["test_keys"]["x"] == [1, 2.5, None, True]


# --- the probe's own addresses ----------------------------------------------------------------

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.168.1.0/24 2 0 2
           |-- 192.168.1.0
              /24 link UNICAST
           |-- 192.168.1.23
              /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 192.168.1.23
              /32 host LOCAL
           |-- 100.64.7.9
              /32 host LOCAL
"""

IF_INET6 = """00000000000000000000000000000001 01 80 10 80       lo
20010db8123400000000000000000077 02 40 00 00     eth0
fe8000000000000000fc00fffe000001 02 40 20 80     eth0
"""


def test_parse_fib_trie_keeps_local_host_addresses_only() -> None:
    assert parse_fib_trie(FIB_TRIE) == ["192.168.1.23", "100.64.7.9"]


def test_parse_if_inet6_drops_loopback() -> None:
    assert parse_if_inet6(IF_INET6) == [V6, "fe80::fc:ff:fe00:1"]


def test_local_addresses_from_given_tables(tmp_path: Any) -> None:
    (tmp_path / "fib").write_text(FIB_TRIE)
    (tmp_path / "inet6").write_text(IF_INET6)
    got = local_addresses(fib_trie=tmp_path / "fib", if_inet6=tmp_path / "inet6")
    assert got == ["192.168.1.23", "100.64.7.9", V6, "fe80::fc:ff:fe00:1"]


def test_local_addresses_of_this_host_match_ip_addr() -> None:
    found = local_addresses()
    for text in found:
        addr = ipaddress.ip_address(text)
        assert not addr.is_loopback and not addr.is_unspecified
    system.require("ip")  # iproute2 cross-checks what local_addresses() read from /proc
    ip_tool = shutil.which("ip") or "ip"
    out = subprocess.run([ip_tool, "-j", "addr"], capture_output=True, text=True, check=True)
    assert sorted(found) == sorted(parse_ip_json(out.stdout))


def test_fast_path_is_not_fooled_by_json_escapes() -> None:
    """An address glued to a character JSON escapes (ESC -> \\u001b) is still scrubbed."""
    for ip in ("198.51.100.7", "2001:db8::7"):
        msmt = {"probe_ip": ip, "test_keys": {"requests": [{"body": "\x1b" + ip + "\x01"}]}}
        out = scrub_measurement(msmt, probe_ips=[ip])
        assert ip not in json.dumps(out, ensure_ascii=False)
        assert ip not in out["test_keys"]["requests"][0]["body"]


def test_fast_path_returns_equal_measurement_when_nothing_to_scrub() -> None:
    msmt = {"probe_ip": "127.0.0.1", "input": "https://a.test/", "test_keys": {"x": ["1.2.3.4"]}}
    out = scrub_measurement(msmt, probe_ips=["198.51.100.7"])
    assert out == msmt
