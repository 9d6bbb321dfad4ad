"""Every byte stream is a fact, never a crash: the probe against the zoo of hostile servers.

Each case is a real loopback server (``tests/hostile/zoo.py``); the probe measures it through
:func:`probe.experiment.measure_web` and the measurement is published as ``probe run`` does. For
every case: no exception escapes, every failure is an OONI failure string, what is kept is
bounded (a recorded body never exceeds the body cap, a published line stays within a few times
it), and the case's own facts are recorded (a truncated body, a timeout with the partial body
kept, the TLS failure and the chain received...). Time is bounded by the probe's timeouts (the
slow cases wait for them); no test asserts a duration.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import trio

from probe.config import Config, Timeouts
from probe.experiment import measure_web
from probe.failures import is_failure_string
from probe.privacy import scrub_measurement
from tests.hostile.context import run_context
from tests.hostile.zoo import (
    CASES,
    REDIRECTS,
    Case,
    RedirectCase,
    redirect,
    router,
    serving,
    url_of,
)
from tests.unit.servers import Certs, TCPServer, closed_port, tcp_server

BODY_CAP = 1 << 19
TIMEOUTS = Timeouts(dns=2.0, connect=2.0, tls=2.0, http=2.0, target=30.0)
#: a published line: at most the body (1.33x as base64) a few times over, plus the rest
LINE_CAP = 4 * BODY_CAP + (256 << 10)


def _failures(value: Any) -> list[str]:
    """Every ``failure`` value anywhere in the test keys."""
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "failure" and isinstance(item, str):
                out.append(item)
            else:
                out.extend(_failures(item))
    elif isinstance(value, list):
        for item in value:
            out.extend(_failures(item))
    return out


def _body_bytes(body: Any) -> bytes:
    if isinstance(body, dict):
        return base64.b64decode(body["data"])
    return (body or "").encode("utf-8")


def _check_bounded(msmt: dict[str, Any]) -> dict[str, Any]:
    tk = msmt["test_keys"]
    assert "ExceptionGroup" not in json.dumps(tk)
    for failure in _failures(tk) + [f for f in [tk["x_failure"]] if f]:
        assert is_failure_string(failure), failure
    for request in tk["requests"]:
        assert len(_body_bytes(request["response"]["body"])) <= BODY_CAP
    published = scrub_measurement(msmt, probe_ips=["203.0.113.9"], decoded_cap=BODY_CAP)
    line = json.dumps(published)
    assert len(line) <= LINE_CAP, len(line)
    return published


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("zoo-certs"))


async def _measure(case: Case, certs: Certs) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx = run_context(Config(timeouts=TIMEOUTS, body_cap=BODY_CAP), ca_file=Path(certs.ca_file))
    async with serving(case, certs) as server:
        msmt = await measure_web(url_of(case, server), ctx=ctx)
    return msmt, _check_bounded(msmt)


def _first(msmt: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = msmt["test_keys"]["requests"][-1]  # newest first: the classic one
    return request


TOO_LONG = "unknown_failure: RemoteProtocolError: Receive buffer too long"
CONFLICT = "unknown_failure: RemoteProtocolError: conflicting Content-Length"
#: case -> what the first request must show: (failure or a prefix of it, status, truncated)
HTTP_FACTS: dict[str, tuple[str | None, int, bool]] = {
    "endless-body": (None, 200, True),
    "endless-chunked": (None, 200, True),
    "gzip-bomb": (None, 200, False),
    "br-bomb": (None, 200, False),
    "zstd-bomb": (None, 200, False),
    "slowloris-head": ("generic_timeout_error", 0, False),
    "slowloris-body": ("generic_timeout_error", 200, False),
    "giant-headers": (TOO_LONG, 0, False),
    "giant-header-line": (TOO_LONG, 0, False),
    "invalid-status-line": ("unknown_failure: RemoteProtocolError: illegal status line", 0, False),
    "status-999": (None, 999, False),
    "http-0.9": ("eof_error", 0, False),
    "binary-garbage": ("unknown_failure: RemoteProtocolError: illegal ", 0, False),
    "nul-in-headers": ("unknown_failure: RemoteProtocolError: illegal header line", 0, False),
    "content-length-lies": ("eof_error", 200, False),
    "content-length-huge": ("unknown_failure: RemoteProtocolError: bad Content-Length", 0, False),
    "two-content-lengths": (CONFLICT, 0, False),
    "bad-chunk-size": ("unknown_failure: RemoteProtocolError: illegal chunk header", 200, False),
}  # fmt: skip
TLS_FACTS = {
    "tls-self-signed": "ssl_unknown_authority",
    "tls-expired": "ssl_invalid_certificate",
    "tls-wrong-name": "ssl_invalid_hostname",
    "tls-huge-chain": "ssl_unknown_authority",
    "tls-garbage-after-hello": "ssl_failed_handshake",
    "tls-alert": "ssl_failed_handshake",
    "tls-plain-http": "ssl_failed_handshake",
    "tls-endless-records": "generic_timeout_error",
}


def test_every_case_has_its_facts_written_down() -> None:
    assert {c.name for c in CASES} == set(HTTP_FACTS) | set(TLS_FACTS)


@pytest.mark.parametrize("case", [c for c in CASES if c.scheme == "http"], ids=lambda c: c.name)
async def test_hostile_http_server(case: Case, certs: Certs) -> None:
    msmt, published = await _measure(case, certs)
    failure, status, truncated = HTTP_FACTS[case.name]
    request = _first(msmt)
    assert msmt["test_keys"]["x_failure"] is None
    if failure is None:
        assert request["failure"] is None
    else:
        assert (request["failure"] or "").startswith(failure), request["failure"]
    assert request["response"]["code"] == status
    assert request["response"]["body_is_truncated"] is truncated
    body = _body_bytes(request["response"]["body"])
    if case.name.startswith("endless"):
        assert len(body) == BODY_CAP
    if case.name == "slowloris-body":
        assert 0 < len(body) < 100  # the bytes that came before the timeout are kept
    if case.name == "content-length-lies":
        assert body == b"0123456789"
    if case.name.endswith("-bomb"):
        response = _first(published)["response"]
        assert response["x_body_decoded"] == case.name.split("-")[0]
        assert response["body_is_truncated"] is True  # decoded up to the cap, not 512 MiB
        assert len(_body_bytes(response["body"])) <= BODY_CAP


@pytest.mark.parametrize("case", [c for c in CASES if c.scheme == "https"], ids=lambda c: c.name)
async def test_hostile_tls_server(case: Case, certs: Certs) -> None:
    msmt, _ = await _measure(case, certs)
    tk = msmt["test_keys"]
    assert tk["x_failure"] is None
    classic = [h for h in tk["tls_handshakes"] if not any("x_diag" in t for t in h["tags"])]
    assert [h["failure"] for h in classic] == [TLS_FACTS[case.name]]
    chain = classic[0]["peer_certificates"] or []
    if case.name == "tls-huge-chain":
        assert 40 <= len(chain) <= 101  # what OpenSSL accepted to read, never more
    if case.name in ("tls-self-signed", "tls-expired", "tls-wrong-name"):
        assert len(chain) == 1  # the chain is evidence even when verification fails
    assert tk["requests"] == []


# --- redirects ----------------------------------------------------------------------------------


async def _measure_redirect(routes: Any, ctx: Any, *, path: str = "/") -> dict[str, Any]:
    holder: dict[str, TCPServer] = {}

    async def handler(stream: trio.abc.Stream) -> None:
        await router(routes)(holder["server"])(stream)

    async with tcp_server(handler) as server:
        holder["server"] = server
        return await measure_web(f"http://{server.address}{path}", ctx=ctx)


REDIRECT_FACTS = {
    "loop": ("unknown_failure: stopped after 10 redirects", 11),
    "self": ("unknown_failure: stopped after 10 redirects", 11),
    "hundred": ("unknown_failure: stopped after 10 redirects", 11),
    "no-host": ("unknown_failure: stopped after 10 redirects", 11),  # "http://" is the same URL
    "javascript": ("http_invalid_redirect_location_host", 1),
    "ftp": ("http_invalid_redirect_location_host", 1),
    "bad-bracket": ("http_invalid_redirect_location_host", 1),
    "bad-port": ("http_invalid_redirect_location_host", 1),
    "port-zero": ("http_invalid_redirect_location_host", 1),
    "empty": (None, 1),
    "spaces": ("http_invalid_redirect_location_host", 1),
    "huge": ("http_invalid_redirect_location_host", 1),
    "zone-id": ("http_invalid_redirect_location_host", 1),
    "credentials": ("unknown_failure: stopped after 10 redirects", 11),
}


@pytest.mark.parametrize("case", REDIRECTS, ids=lambda c: c.name)
async def test_redirect_zoo(case: RedirectCase) -> None:
    ctx = run_context(Config(timeouts=TIMEOUTS, body_cap=BODY_CAP))
    msmt = await _measure_redirect(case.routes, ctx)
    _check_bounded(msmt)
    tk = msmt["test_keys"]
    failure, requests = REDIRECT_FACTS[case.name]
    assert tk["x_failure"] == failure
    assert len(tk["requests"]) == requests
    for request in tk["requests"]:  # only this loopback server was ever asked
        assert request["address"].startswith("127.0.0.1:")
        assert "u:p@" not in request["request"]["url"]
    assert {c["ip"] for c in tk["tcp_connect"]} == {"127.0.0.1"}


#: where a hostile public site may try to send the volunteer (issue 12 item 1)
PRIVATE_TARGETS = [
    "0.0.0.0", "[::]", "169.254.169.254", "192.168.1.1", "10.0.0.1", "172.16.0.1",
    "100.64.0.1", "192.0.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "[fc00::1]",
    "[fe80::1]", "[::ffff:10.0.0.1]", "[64:ff9b::a00:1]", "[2002:a00:1::1]", "[::1]",
]  # fmt: skip


async def test_redirects_into_private_ranges_are_never_followed() -> None:
    """The measured site is public (loopback plays it); its redirects to special-purpose
    addresses pass the URL validator (they are valid URLs), then the connect policy
    (probe.policy) skips them: listed in ``x_skipped_endpoints``, never connected to."""
    ctx = run_context(Config(timeouts=TIMEOUTS, body_cap=BODY_CAP))
    port = closed_port()
    for target in PRIVATE_TARGETS:
        location = f"http://{target}:{port}/latest/meta-data/"
        msmt = await _measure_redirect(lambda p, s, loc=location: redirect(loc), ctx)
        tk = msmt["test_keys"]
        bare = target.strip("[]")
        assert all(c["ip"] not in (bare, target) for c in tk["tcp_connect"]), target
        assert any(bare in endpoint for endpoint in tk["x_skipped_endpoints"]), target
        # a valid URL: the validator let it through, the policy stopped it
        assert tk["x_failure"] != "http_invalid_redirect_location_host", target
        assert len(tk["requests"]) == 1, target
