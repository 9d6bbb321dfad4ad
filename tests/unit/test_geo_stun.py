"""The STUN codec (pure) and one STUN attempt against a real UDP responder on 127.0.0.1.

:func:`stun_responder` is also used by the other geolocation tests: it answers every Binding
request with a planted "public" address, the way a STUN server reports what it sees.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from probe.geo import stun
from probe.geo.publicip import STUN_BAD_RESPONSE, split_host_port
from probe.geo.publicip import stun as stun_attempt

TXID = bytes(range(12))


@dataclass
class Responder:
    address: str
    requests: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def stun_responder(
    ip: str, *, mode: str = "xor", host: str = "127.0.0.1"
) -> AsyncIterator[Responder]:
    """UDP STUN server on ``host`` (127.0.0.1 or ::1). ``mode``: ``xor``, ``mapped``, ``noise``
    (a stray datagram for another transaction, then the right answer) or ``silent``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    await sock.bind((host, 0))
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    responder = Responder(address=f"{shown}:{sock.getsockname()[1]}")

    async def serve() -> None:
        while True:
            data, peer = await sock.recvfrom(2048)
            responder.requests.append(data)
            if mode == "silent" or len(data) < 20:
                continue
            txid = data[8:20]
            if mode == "noise":
                other = bytes(12)
                attr = stun.encode_address("203.0.113.9", 1, transaction_id=other, xor=True)
                await sock.sendto(stun.binding_response(other, attr), peer)
            attr = stun.encode_address(ip, peer[1], transaction_id=txid, xor=mode != "mapped")
            await sock.sendto(stun.binding_response(txid, attr), peer)

    with sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            yield responder
            nursery.cancel_scope.cancel()


# --- codec ------------------------------------------------------------------------------------


def test_request_layout() -> None:
    req = stun.binding_request(TXID)
    assert len(req) == 20
    assert req[:4] == b"\x00\x01\x00\x00"
    assert req[4:8] == b"\x21\x12\xa4\x42"
    assert req[8:] == TXID
    with pytest.raises(ValueError):
        stun.binding_request(b"short")


@pytest.mark.parametrize("ip", ["192.0.2.77", "2001:db8::77", "255.255.255.255"])
@pytest.mark.parametrize("xor", [True, False])
def test_roundtrip(ip: str, xor: bool) -> None:
    attr = stun.encode_address(ip, 54321, transaction_id=TXID, xor=xor)
    got = stun.parse_binding_response(stun.binding_response(TXID, attr), transaction_id=TXID)
    assert got == stun.MappedAddress(ip=ip, port=54321, xor=xor)


def test_xor_mapped_wins_over_mapped_and_unknown_attributes_are_skipped() -> None:
    software = struct.pack("!HH", 0x8022, 5) + b"hello\x00\x00\x00"  # padded to 4
    attrs = (
        software
        + stun.encode_address("198.51.100.1", 1, transaction_id=TXID, xor=False)
        + stun.encode_address("192.0.2.77", 2, transaction_id=TXID, xor=True)
    )
    got = stun.parse_binding_response(stun.binding_response(TXID, attrs), transaction_id=TXID)
    assert (got.ip, got.xor) == ("192.0.2.77", True)


def test_known_vector_xor_mapped_address() -> None:
    # RFC 5769 2.2: XOR-MAPPED-ADDRESS of 192.0.2.1:32853 in the sample IPv4 response
    txid = bytes.fromhex("b7e7a701bc34d686fa87dfae")
    attr = bytes.fromhex("002000080001a147e112a643")
    got = stun.parse_binding_response(stun.binding_response(txid, attr), transaction_id=txid)
    assert (got.ip, got.port) == ("192.0.2.1", 32853)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "shorter"),
        (stun.binding_request(TXID), "not a binding success"),
        (stun.binding_response(bytes(12), b""), "another transaction"),
        (stun.binding_response(TXID, b""), "no mapped address"),
        (b"\x01\x11\x00\x00\x21\x12\xa4\x42" + TXID, "error response"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x00" + TXID, "cookie"),
        (b"\x01\x01\x00\x04\x21\x12\xa4\x42" + TXID, "length field"),
        (stun.binding_response(TXID, b"\x00\x20\x00\x08\x00\x03\x00\x00abcd"), "family"),
        (stun.binding_response(TXID, b"\x00\x20\x00\x02\x00\x01\x00\x00"), "too short"),
        (stun.binding_response(TXID, b"\x00\x20\x00\x08\x00\x01"), "length field"),
    ],
)
def test_malformed_answers_raise_stun_error(data: bytes, why: str) -> None:
    with pytest.raises(stun.StunError, match=why):
        stun.parse_binding_response(data, transaction_id=TXID)


@given(st.binary(max_size=200))
def test_parser_never_raises_anything_else_on_arbitrary_bytes(data: bytes) -> None:
    try:
        stun.parse_binding_response(data, transaction_id=TXID)
    except stun.StunError:
        pass


@given(st.binary(max_size=120), st.sampled_from([0x0101, 0x0111, 0x0001]))
def test_parser_never_raises_anything_else_behind_a_valid_header(body: bytes, kind: int) -> None:
    body = body[: len(body) - len(body) % 4]  # keeps the length check from rejecting it early
    data = struct.pack("!HHI12s", kind, len(body), stun.MAGIC_COOKIE, TXID) + body
    try:
        got = stun.parse_binding_response(data, transaction_id=TXID)
    except stun.StunError:
        return
    # an address the scrubber can find: the canonical text of a real IPv4/IPv6 address
    assert str(ipaddress.ip_address(got.ip)) == got.ip


@pytest.mark.parametrize("bad", ["nohost", "host:", ":3478", "host:99999", "[::1]3478"])
def test_split_host_port_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(bad)


def test_split_host_port_accepts() -> None:
    assert split_host_port("stun.l.google.com:19302") == ("stun.l.google.com", 19302)
    assert split_host_port("[::1]:3478") == ("::1", 3478)


# --- one attempt over real UDP ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["xor", "mapped", "noise"])
async def test_stun_attempt_learns_the_planted_address(mode: str) -> None:
    async with stun_responder("192.0.2.77", mode=mode) as server:
        attempt = await stun_attempt(server.address, timeout=5)
    assert (attempt.method, attempt.ip, attempt.failure) == ("stun", "192.0.2.77", None)
    assert len(server.requests) == 1  # one attempt, no retries
    assert server.requests[0][:2] == b"\x00\x01"


async def test_stun_timeout_is_the_configured_one(autojump_clock: trio.testing.MockClock) -> None:
    async with stun_responder("192.0.2.77", mode="silent") as server:
        start = trio.current_time()
        attempt = await stun_attempt(server.address, timeout=3)
        assert trio.current_time() - start == pytest.approx(3)
    assert attempt.ip is None and attempt.failure == "generic_timeout_error"
    assert len(server.requests) == 1


async def test_stun_garbage_only_is_a_bad_response(autojump_clock: trio.testing.MockClock) -> None:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))

    async def garbage() -> None:
        _, peer = await sock.recvfrom(2048)
        await sock.sendto(b"\x01\x01 not stun at all", peer)

    with sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(garbage)
            attempt = await stun_attempt(f"127.0.0.1:{sock.getsockname()[1]}", timeout=2)
    assert attempt.failure == STUN_BAD_RESPONSE


async def test_stun_closed_port_is_refused() -> None:
    probe_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe_sock.bind(("127.0.0.1", 0))
    port = probe_sock.getsockname()[1]
    probe_sock.close()  # nobody listens there now: the kernel answers ICMP port unreachable
    attempt = await stun_attempt(f"127.0.0.1:{port}", timeout=5)
    assert attempt.failure == "connection_refused"
