"""The packet-level machinery on real sockets over loopback: raw capture with its BPF filters, a
TTL-limited TCP probe and a DNS probe against real loopback servers, and a whole
``measure_packet`` (no routers on loopback: every path is one hop long).

Needs raw sockets (root or CAP_NET_RAW): under CI=true (root) these run and fail loudly when
they cannot; elsewhere they skip with the reason printed. The lab covers real paths
(tests/integration/test_packet.py).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from probe import registry
from probe.analysis.packet import analyze_packet
from probe.config import Config, Timeouts
from probe.context import RunContext
from probe.packet import bpf
from probe.packet.capture import Capture
from probe.packet.follow import RunFollowUps
from probe.packet.measure import PacketContext, measure_packet
from probe.packet.privilege import unavailable
from probe.packet.probes import dns_probe, tcp_probe
from probe.packet.spec import PacketLimits
from probe.packet.target import manual
from probe.packet.triggers import client_hello, dns_query
from probe.packet.wire import demux
from tests.lab.fixtures import skip_or_fail
from tests.unit.servers import answer, dns_server, reset, tcp_server

#: the client's packets leave from 127.0.0.1: the filters tell them apart. Other tests on this
#: shared machine use loopback too: the addresses here are unusual, the assertions tolerant of
#: their traffic (a property of everything captured, and our own packets among it)
SERVER = "127.80.61.2"
TIMEOUTS = Timeouts(connect=2.0, packet_reply=0.5, packet_linger=0.2, packet_linger_floor=0.05)


@pytest.fixture(autouse=True)
def raw_sockets() -> Iterator[None]:
    reason = unavailable()
    if reason is not None:
        skip_or_fail("the packet-level test", reason)
    yield


def _raw(proto: int, program: list[bpf.Insn]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    bpf.attach(sock, program)
    sock.settimeout(1.0)
    return sock


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    sock.settimeout(0.2)
    try:
        while True:
            out.append(sock.recv(65535))
    except TimeoutError:
        return out


def test_the_source_filter_keeps_one_sender_only() -> None:
    with _raw(socket.IPPROTO_UDP, bpf.from_source(SERVER)) as raw:
        for src in ("127.0.0.1", SERVER, "127.80.61.3"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((src, 0))
                udp.sendto(f"from {src}".encode(), ("127.80.61.4", 9))
        got = _drain(raw)
    assert {socket.inet_ntoa(p[12:16]) for p in got} == {SERVER}
    assert any(p.endswith(f"from {SERVER}".encode()) for p in got)


def test_the_icmp_filter_keeps_errors_only() -> None:
    with _raw(socket.IPPROTO_ICMP, bpf.icmp_errors()) as raw:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"nobody listens", ("127.80.61.5", 9))  # port unreachable (type 3)
            port = udp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as ping:
            ping.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", ("127.80.61.5", 0))  # echo (8)
        got = _drain(raw)
    assert {p[(p[0] & 0x0F) * 4] for p in got} <= {3, 11}
    assert any(demux(p, socket.inet_aton("127.80.61.5")) == ("udp", port) for p in got)


async def _server_hello_unless_blocked(stream: trio.abc.Stream) -> None:
    """A server that resets any ClientHello naming blocked.example itself (not a censor)."""
    data = await stream.receive_some(65536)
    if b"blocked.example" in data:
        reset(stream)
        return
    await stream.send_all(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00")
    await trio.sleep(5)


async def test_a_tcp_probe_sees_the_handshake_and_the_answer() -> None:
    capture = Capture(SERVER)
    async with tcp_server(_server_hello_unless_blocked, host=SERVER) as server:
        async with trio.open_nursery() as nursery:
            await nursery.start(capture.run)
            probe = await tcp_probe(
                SERVER,
                server.port,
                ttl=1,
                role="control",
                payload=client_hello("example.org"),
                capture=capture,
                timeouts=TIMEOUTS,
            )
            nursery.cancel_scope.cancel()
    assert probe.failure is None and probe.peer and not probe.icmp
    packets = capture.packets(probe.key)
    assert packets[0].is_syn and all(p.origin == "peer" for p in packets)
    assert probe.sent_at is not None
    answers = capture.between(probe.key, probe.sent_at, probe.closed_at)
    assert any(p.raw.endswith(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00") for p in answers)
    # SYN, the handshake's ACK, the ClientHello, at least one ACK of the answer, the final RST
    assert probe.packets_sent >= 5


async def test_a_failed_connect_is_recorded_not_retried() -> None:
    capture = Capture(SERVER)
    with socket.socket() as s:
        s.bind((SERVER, 0))
        port = s.getsockname()[1]  # bound, not listening: the kernel answers RST
        async with trio.open_nursery() as nursery:
            await nursery.start(capture.run)
            probe = await tcp_probe(
                SERVER, port, ttl=3, role="control", payload=b"x", capture=capture,
                timeouts=TIMEOUTS,
            )  # fmt: skip
            nursery.cancel_scope.cancel()
    assert (probe.failure, probe.sent_at, probe.packets_sent) == ("connection_refused", None, 1)


async def test_a_dns_probe_keeps_every_answer() -> None:
    def handler(query: object) -> list[object]:
        return [answer(query, "10.10.34.35"), (0.05, answer(query, "192.0.2.7"))]  # type: ignore[arg-type]

    async with dns_server(handler, host=SERVER) as server:  # type: ignore[arg-type]
        port = int(server.address.rsplit(":", 1)[1])
        capture = Capture(SERVER, transports=("udp",))
        async with trio.open_nursery() as nursery:
            await nursery.start(capture.run)
            probe = await dns_probe(
                SERVER, port, ttl=2, role="target", payload=dns_query("blocked.example"),
                capture=capture, timeouts=TIMEOUTS,
            )  # fmt: skip
            nursery.cancel_scope.cancel()
    assert probe.packets_sent == 1 and probe.peer
    assert probe.sent_at is not None
    assert len(capture.between(probe.key, probe.sent_at, probe.closed_at)) == 2


def _context(public: bool) -> PacketContext:
    ranges = (ipaddress.ip_network("127.0.0.0/8"),) if public else ()
    config = Config(timeouts=TIMEOUTS, public_ranges=ranges, probe_asn="AS64500")
    tls = ssl.create_default_context()
    run = RunContext(
        config=config,
        ssl_context=tls,
        diag_ssl_context=tls,
        control_ssl_context=tls,
        udp_resolver=None,
        report_id="20261205T000000Z_censortrace_ZZ_64500_n0_test",
        test_start_time="2026-12-05 00:00:00",
    )
    return PacketContext(run=run, limits=replace(PacketLimits(), probes_per_second=50))


async def test_a_server_that_resets_is_the_server_not_a_censor() -> None:
    async with tcp_server(_server_hello_unless_blocked, host=SERVER) as server:
        target = replace(
            manual("https://blocked.example/", stage="tls", address=SERVER), port=server.port
        )
        msmt = await measure_packet(target, ctx=_context(public=True))
    assert (msmt["test_name"], msmt["test_version"], msmt["input"]) == (
        "censor_trace",
        "0.1.0",
        "https://blocked.example/",
    )
    tk = msmt["test_keys"]
    entry = tk["iterative_trace"][0]
    assert [it["ttl"] for it in entry["control_trace"]["iterations"]] == [1]
    assert [it["ttl"] for it in entry["target_trace"]["iterations"]] == [1]
    # control: SYN, ACK, ClientHello, (ACK of the answer,) RST; target: SYN, ACK, ClientHello;
    # the address's other web port (443): one SYN, refused
    assert 8 <= tk["x_packets_sent"] <= 9 and not tk["x_truncated"]
    other = entry["other_port"]
    assert (other["port"], other["failure"], other["packets_sent"]) == (
        443,
        "connection_refused",
        1,
    )
    assert other["answer"]["tcp_flags"] == "RA"
    censor = analyze_packet(msmt)["x_censors"][0]
    # the RST came from where the server is, with the server's own IP TTL: not injected
    assert (censor["status"], censor["hop"], censor["reaction"], censor["path_length"]) == (
        "server",
        1,
        "rst",
        1,
    )


def _counting(connections: list[int]) -> Any:
    """``_server_hello_unless_blocked``, counting the connections it accepts."""

    async def handler(stream: trio.abc.Stream) -> None:
        connections.append(1)
        await _server_hello_unless_blocked(stream)

    return handler


async def test_a_special_purpose_address_is_never_sent_to() -> None:
    connections: list[int] = []
    async with tcp_server(_counting(connections), host=SERVER) as server:
        target = replace(
            manual("https://blocked.example/", stage="tls", address=SERVER), port=server.port
        )
        msmt = await measure_packet(target, ctx=_context(public=False))
        await trio.sleep(0.1)
    assert connections == []
    tk = msmt["test_keys"]
    assert tk["x_skipped"].startswith(f"{SERVER} is a special-purpose address")
    assert tk["x_skipped_endpoints"] == [f"{SERVER}:{server.port}"]
    assert (tk["iterative_trace"], tk["x_packets_sent"]) == ([], 0)
    verdict = analyze_packet(msmt)
    assert (verdict["x_outcome"], verdict["x_rule_id"]) == (
        "packet/not-traced",
        "packet.not_traced",
    )


async def test_a_special_purpose_literal_target_is_traced() -> None:
    """The user asked for that address itself (as the web test's connect policy says)."""
    connections: list[int] = []
    async with tcp_server(_counting(connections), host=SERVER) as server:
        url = f"https://{SERVER}:{server.port}/"
        target = replace(manual(url, stage="tls", address=SERVER), port=server.port)
        msmt = await measure_packet(target, ctx=_context(public=False))
    assert connections != []
    assert "x_skipped" not in msmt["test_keys"]
    assert msmt["test_keys"]["x_packets_sent"] > 0


# --- probe run --packet-level: the session's follow-up hook ---------------------------------

GOLDEN = Path(__file__).resolve().parents[1] / "goldens" / "lab"


def _finish(msmt: dict[str, Any]) -> dict[str, Any]:
    """What the session's finish does to the verdict keys (the registry's analysis)."""
    test = registry.lookup(msmt["test_name"])
    assert test is not None
    msmt["test_keys"].update(
        test.analyze(msmt, public_ranges=_context(True).run.config.public_ranges)
    )
    return msmt


def _moved(golden: str, port: int) -> dict[str, Any]:
    """A lab measurement (tests/goldens) whose server address is now SERVER:port on loopback."""
    text = (GOLDEN / golden / "measurement.json").read_text(encoding="utf-8")
    text = text.replace("198.19.1.11", SERVER).replace(f"{SERVER}:443", f"{SERVER}:{port}")
    text = text.replace("https://sni-rst.lab.test/", f"https://sni-rst.lab.test:{port}/")
    return _finish(json.loads(text))


async def _sni_rst_server(stream: trio.abc.Stream) -> None:
    """A server that resets a ClientHello naming the lab's SNI-filtered site itself."""
    data = await stream.receive_some(65536)
    if b"sni-rst.lab.test" in data:
        reset(stream)
        return
    await stream.send_all(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00")
    await trio.sleep(5)


async def test_the_run_hook_follows_up_a_blocked_verdict(tmp_path: Path) -> None:
    report = tmp_path / "web.censor_trace.jsonl"
    async with tcp_server(_sni_rst_server, host=SERVER) as server:
        web = _moved("tls-sni-rst", server.port)
        hook = RunFollowUps(
            ctx=_context(public=True), finish_web=_finish, finish_trace=_finish, report=report
        )
        uploaded: list[bytes] = []

        async def outbox(line: bytes) -> None:  # what probe run's upload gets (its outbox)
            uploaded.append(line)

        hook.written_hook = outbox
        with closing(hook):
            merged = await hook(web)
    assert (hook.followed, hook.written) == (1, 1)
    assert uploaded == [report.read_bytes()]  # the trace line, once it is whole in the file
    assert "x_packet" not in web["test_keys"]  # a copy was merged, the original kept
    tk = merged["test_keys"]
    assert [tk[k] for k in ("blocking", "x_outcome", "x_rule_id")] == [
        web["test_keys"][k] for k in ("blocking", "x_outcome", "x_rule_id")
    ]
    # on loopback the server is one hop away and resets the name itself: not a censor
    assert (tk["x_censor_hop"], tk["x_censors"][0]["status"]) == (None, "server")
    (line,) = report.read_text(encoding="utf-8").splitlines()
    trace = json.loads(line)
    assert (trace["test_name"], trace["input"]) == ("censor_trace", web["input"])
    assert trace["test_keys"]["x_outcome"] == "packet/server-reaction"
    assert trace["test_keys"]["x_target"]["measurement"]["report_id"] == web["report_id"]
    assert tk["x_packet"]["report_id"] == trace["report_id"]


async def test_the_run_hook_leaves_other_verdicts_alone(tmp_path: Path) -> None:
    report = tmp_path / "web.censor_trace.jsonl"
    hook = RunFollowUps(
        ctx=_context(public=True), finish_web=_finish, finish_trace=_finish, report=report
    )
    for name in ("ok-https", "tcp-syn-rst", "down-refused"):
        web = _finish(json.loads((GOLDEN / name / "measurement.json").read_text("utf-8")))
        assert await hook(web) is web, name
    hook.close()
    assert (hook.followed, hook.written, report.exists()) == (0, 0, False)
