"""The probe's TH client against real loopback servers: every failure is a control_failure."""

from __future__ import annotations

import json

import trio

from probe.archival import ControlRequest
from probe.config import Timeouts
from probe.control.client import query_control
from probe.stages.tls import make_ssl_context
from tests.unit.servers import closed_port, http_server, response, silent, tcp_server

REQUEST = ControlRequest(http_request="http://example.org/", tcp_connect=["192.0.2.1:80"])
GOOD = {
    "tcp_connect": {"192.0.2.1:80": {"status": True, "failure": None}},
    "http_request": {
        "body_length": 5,
        "failure": None,
        "title": "",
        "headers": {},
        "status_code": 200,
        "x_transfer": {"body_length": 5},
    },  # fmt: skip
    "dns": {"failure": None, "addrs": ["192.0.2.1"]},
}


async def ask(url: str, control: float = 5.0) -> tuple[object, str | None]:
    return await query_control(
        url, REQUEST, ssl_context=make_ssl_context(), timeouts=Timeouts(control=control)
    )


async def test_success_returns_the_json_with_our_extension_keys() -> None:
    body = json.dumps(GOOD).encode()
    async with http_server([response(body, headers=["Content-Type: application/json"])]) as s:
        answer, failure = await ask(f"http://{s.address}/")
    assert failure is None and answer == GOOD
    sent = s.requests[0].decode()
    assert sent.startswith("POST / HTTP/1.1") and "censorprobe/" in sent


async def test_closed_port_is_connection_refused() -> None:
    assert await ask(f"http://127.0.0.1:{closed_port()}/") == (None, "connection_refused")


async def test_silent_server_is_a_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with tcp_server(silent) as s:
        start = trio.current_time()
        assert await ask(f"http://{s.address}/", control=7.0) == (None, "generic_timeout_error")
        assert trio.current_time() - start == 7.0


async def test_non_200_is_http_request_failed() -> None:
    async with http_server([response(b'{"error": "overloaded"}', status="503 Busy")]) as s:
        assert await ask(f"http://{s.address}/") == (None, "http_request_failed")


async def test_bad_json_and_wrong_schema_are_json_parse_error() -> None:
    for body in (b"<html>oops</html>", b"[1, 2]", b'{"tcp_connect": 5}',
                 b'{"http_request": {"status_code": "two hundred"}}'):  # fmt: skip
        async with http_server([response(body)]) as s:
            assert await ask(f"http://{s.address}/") == (None, "json_parse_error"), body


async def test_connection_closed_mid_response_is_classified() -> None:
    async with http_server([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"]) as s:
        answer, failure = await ask(f"http://{s.address}/")
    assert answer is None and failure is not None and failure != "generic_timeout_error"


async def test_an_oversized_answer_is_json_parse_error_and_leaks_nothing() -> None:
    # filterwarnings=error: an unclosed stream or generator would fail this test
    body = b"[" + b"0," * (3 << 20) + b"0]"  # over the 4 MiB cap
    async with http_server([response(body)]) as s:
        assert await ask(f"http://{s.address}/") == (None, "json_parse_error")


async def test_an_oversized_chunked_answer_is_drained_and_refused() -> None:
    piece = b"0," * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 40 + b"0\r\n\r\n"
    async with http_server([raw]) as s:
        assert await ask(f"http://{s.address}/") == (None, "json_parse_error")
