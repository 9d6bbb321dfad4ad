"""Every DNS datagram is a fact, never a crash: the kept corpus and structured fuzzing.

The corpus (``corpus/dns/replies.toml``, written by ``corpus/dns/craft.py``) holds crafted replies
with their expected classification; each runs every time, through the pure parser and through
the real UDP stub against a real loopback DNS server, and the issue-12 case (an A record of
another class) also through a whole :func:`probe.experiment.measure_web`. The hypothesis tests
draw structured replies (odd classes and types, looping pointers, lying counts, cuts, wrong ids
and questions) rather than random bytes, so that odd-class records come up on every run.
"""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, example, given, settings

from probe.config import Config, Timeouts
from probe.experiment import measure_web
from probe.failures import is_failure_string
from probe.stages.dns import lookup_udp, parse_reply
from probe.trace import Trace
from tests.hostile.context import run_context
from tests.hostile.dnswire import Drawn, replies
from tests.unit import servers

CORPUS = tomllib.loads((Path(__file__).parent / "corpus" / "dns" / "replies.toml").read_text())
ENTRIES: list[dict[str, Any]] = CORPUS["reply"]


def _expected_failure(entry: dict[str, Any]) -> str | None:
    return None if entry["failure"] == "null" else str(entry["failure"])


def _parse(entry: dict[str, Any], wire: bytes | None = None) -> Any:
    return parse_reply(
        bytes.fromhex(entry["hex"]) if wire is None else wire,
        query_id=entry["qid"],
        rdtype=dns.rdatatype.RdataType.make(entry["qtype"]),
        qname=dns.name.from_text(entry["qname"]),
    )


def test_corpus_is_not_empty_and_names_are_unique() -> None:
    names = [e["name"] for e in ENTRIES]
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert any(e["name"].startswith("a-class-") for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_corpus_reply_is_classified(entry: dict[str, Any]) -> None:
    parsed = _parse(entry)
    assert parsed.failure == _expected_failure(entry), entry["why"]
    assert parsed.addresses == entry["addresses"], entry["why"]
    assert parsed.accept is entry["accept"], entry["why"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
async def test_corpus_reply_through_the_udp_stub(entry: dict[str, Any]) -> None:
    """A real loopback server sends the crafted datagram (with the query's id) for the asked
    type; when a stub must not accept it, a good reply follows. Both queries are recorded."""
    wire = bytes.fromhex(entry["hex"])
    asked = entry["qtype"]

    def handler(query: dns.message.Message) -> Any:
        if dns.rdatatype.to_text(query.question[0].rdtype) != asked:
            return servers.answer(query)
        crafted = wire
        if len(wire) >= 2:
            delta = (
                0 if entry["accept"] or entry["failure"] != "dns_reply_with_wrong_query_id" else 1
            )
            crafted = ((query.id + delta) & 0xFFFF).to_bytes(2, "big") + wire[2:]
        good = servers.answer(query, "192.0.2.99", "2001:db8::99")
        return [crafted] if entry["accept"] else [crafted, (0.05, good)]

    trace = Trace()
    async with servers.dns_server(handler) as srv:
        await lookup_udp(
            trace,
            entry["qname"],
            resolver=srv.address,
            timeouts=Timeouts(dns=2.0, dns_listen_window=0.2),
        )
    assert sorted(q.query_type for q in trace.queries) == ["A", "AAAA"]
    (main,) = [q for q in trace.queries if q.query_type == asked]
    if entry["accept"]:
        assert main.failure == _expected_failure(entry)
        assert main.raw_response is not None
        got = [a.ipv4 or a.ipv6 for a in main.answers or [] if a.answer_type == asked]
        assert got == entry["addresses"]
    else:
        assert main.failure is None  # the good reply that followed
        (dup,) = [d for d in trace.dns_duplicates if d.query_type == asked]
        assert dup.failure == _expected_failure(entry)
        assert base64.b64decode(dup.raw_response or "")[2:] == wire[2:]


async def test_odd_class_answer_keeps_the_dns_facts_in_a_whole_measurement(
    tmp_path: Path,
) -> None:
    """Issue 12: the UDP queries vanished and x_failure became unknown_failure: ExceptionGroup."""
    (entry,) = [e for e in ENTRIES if e["name"] == "a-class-ch"]
    wire = bytes.fromhex(entry["hex"])

    def handler(query: dns.message.Message) -> Any:
        if query.question[0].rdtype == dns.rdatatype.A:
            return query.id.to_bytes(2, "big") + wire[2:]
        return servers.answer(query)

    page = b"<html><head><title>ok</title></head><body>fine</body></html>"
    async with (
        servers.dns_server(handler) as resolver,
        servers.http_server([servers.response(page)]) as web,
    ):
        port = web.address.rsplit(":", 1)[1]
        config = Config(timeouts=Timeouts(dns=2.0, dns_listen_window=0.1, target=20))
        ctx = run_context(config, udp_resolver=resolver.address)
        # the name differs from the crafted question: the reply is not ours
        msmt = await measure_web(f"http://localhost:{port}/", ctx=ctx)
    tk = msmt["test_keys"]
    assert tk["x_failure"] is None
    udp = [q for q in tk["queries"] if q["engine"] == "udp"]
    assert sorted(q["query_type"] for q in udp) == ["A", "AAAA"]
    for q in udp:
        assert q["failure"] is None or is_failure_string(q["failure"])
    assert tk["requests"] and tk["requests"][0]["response"]["code"] == 200


async def test_odd_class_answer_to_the_asked_name(tmp_path: Path) -> None:
    """The same reply, now for the very name asked: recorded as dns_no_answer, not a crash."""
    (entry,) = [e for e in ENTRIES if e["name"] == "a-class-ch"]
    wire = bytes.fromhex(entry["hex"])
    qname_wire = b"".join(bytes([len(p)]) + p.encode() for p in ["localhost"]) + b"\x00"
    body = wire[12 + len(b"\x03www\x07example\x04test\x00") :]

    def handler(query: dns.message.Message) -> Any:
        if query.question[0].rdtype == dns.rdatatype.A:
            return query.id.to_bytes(2, "big") + wire[2:12] + qname_wire + body
        return servers.answer(query)

    async with servers.dns_server(handler) as resolver:
        trace = Trace()
        res = await lookup_udp(
            trace, "localhost", resolver=resolver.address, timeouts=Timeouts(dns=2.0)
        )
    (a,) = [q for q in trace.queries if q.query_type == "A"]
    assert a.failure == "dns_no_answer" and a.answers is None
    assert res.failure == "dns_no_answer"


# --- structured fuzzing -----------------------------------------------------------------------


def _corpus_example(name: str) -> Drawn:
    (entry,) = [e for e in ENTRIES if e["name"] == name]
    return Drawn(
        qid=entry["qid"],
        qname=entry["qname"],
        qtype=dns.rdatatype.RdataType.make(entry["qtype"]).value,
        wire=bytes.fromhex(entry["hex"]),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@example(_corpus_example("a-class-ch"))
@example(_corpus_example("a-class-zero"))
@example(_corpus_example("compression-loop-self"))
@given(drawn=replies())
def test_parse_reply_is_total_on_structured_replies(drawn: Drawn) -> None:
    parsed = parse_reply(
        drawn.wire,
        query_id=drawn.qid,
        rdtype=dns.rdatatype.RdataType.make(drawn.qtype),
        qname=dns.name.from_text(drawn.qname),
    )
    assert parsed.failure is None or is_failure_string(parsed.failure)
    if parsed.failure is None:
        assert parsed.accept and parsed.addresses
    for answer in parsed.answers:
        assert answer.answer_type in ("A", "AAAA", "CNAME")
        if answer.answer_type == "A":
            assert isinstance(answer.ipv4, str) and answer.ipv4.count(".") == 3
        if answer.answer_type == "AAAA":
            assert isinstance(answer.ipv6, str) and ":" in answer.ipv6
    for address in parsed.addresses:
        assert isinstance(address, str)
