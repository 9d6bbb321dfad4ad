"""DNS stage: the system resolver (getaddrinfo) and a wire-level UDP stub (dnspython messages).

:func:`lookup_getaddrinfo` runs ``socket.getaddrinfo`` in a worker thread (abandoned on cancel)
and records one ``query_type="ANY"`` query with engine ``getaddrinfo``: the A/AAAA results as
fake answers, plus the canonical name as a CNAME answer when ``AI_CANONNAME`` gives one, and the
raw ``EAI_*`` code in ``getaddrinfo_error`` on failure.

:func:`lookup_udp` sends an A and an AAAA query, each on its own connected trio UDP socket
(so ICMP port-unreachable shows up as ``connection_refused``), concurrently. Messages are built
and parsed with ``dns.message`` (no dnspython I/O). The first reply whose id matches is the
answer a real stub would use; after it the socket keeps listening ``timeouts.dns_listen_window``
and every further datagram goes to ``trace.dns_duplicates`` (tag ``x_duplicate``). A reply with
a wrong id is never accepted: it is recorded as a duplicate with failure
``dns_reply_with_wrong_query_id``; nor is one whose question is not ours (recorded as a
duplicate, ``dns_server_misbehaving``). :func:`parse_reply` is total: whatever the datagram
(cut off, compression loops, records of odd classes or types), it returns a classified fact; it
is fuzzed with hypothesis and a kept corpus of crafted replies (``tests/hostile/corpus/dns``).
Two replies with different answers are the wire signature of
injection. rcode -> failure: 3 nxdomain, 2 servfail, 5 refused, others server_misbehaving; an
unparseable reply is ``dns_server_misbehaving``; NOERROR without a record of the asked type is
``dns_no_answer``.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import trio

from probe.archival import DNSAnswer, DNSQuery
from probe.config import Timeouts
from probe.failures import OpFailure, classify, classify_dns_rcode, failed
from probe.net import TRIO, AddrInfo, DatagramSocket, Network
from probe.netaddr import join_endpoint, parse_ip, split_endpoint
from probe.stages.result import StageResult
from probe.trace import Trace
from probe.vocabulary import Failure, Operation

DUPLICATE_TAG = "x_duplicate"


@dataclass(frozen=True, slots=True)
class DNSResult(StageResult[list[str]]):
    """One lookup: the addresses a stub would use (the value), the failure if there are none,
    and, for the UDP stub, each query's own result (A, then AAAA)."""

    rcode: int | None = None
    exchanges: tuple[StageResult[ParsedReply | None], ...] = ()

    @property
    def addresses(self) -> list[str]:
        return self.value


# --- system resolver ------------------------------------------------------------------------


async def lookup_getaddrinfo(
    trace: Trace,
    host: str,
    *,
    timeouts: Timeouts,
    tags: Sequence[str] = (),
    net: Network = TRIO,
) -> DNSResult:
    """Resolve ``host`` with the system resolver; records one ``ANY`` query (engine getaddrinfo)."""
    tid = trace.new_transaction_id()
    t0 = trace.elapsed()
    error: OpFailure | None = None
    gai_code: int | None = None
    infos: list[AddrInfo] = []
    try:
        with trio.move_on_after(timeouts.dns) as scope:
            try:
                infos = await net.getaddrinfo(host)
            except socket.gaierror as exc:
                gai_code = exc.errno if isinstance(exc.errno, int) else None
                error = classify(exc, Operation.RESOLVE)
            except (OSError, UnicodeError, ValueError) as exc:
                error = classify(exc, Operation.RESOLVE)
        if scope.cancelled_caught:
            error = failed(Failure.GENERIC_TIMEOUT_ERROR, Operation.RESOLVE)
    except trio.Cancelled:
        _record_gai(trace, host, tid, t0, [], Failure.INTERRUPTED.value, None, tags)
        raise
    addresses: list[str] = []
    answers: list[DNSAnswer] = []
    canon = ""
    for info in infos:
        canon = canon or info.canonname
        if info.ip in addresses:
            continue
        addresses.append(info.ip)
        if info.family == socket.AF_INET6:
            answers.append(DNSAnswer(answer_type="AAAA", ipv6=info.ip))
        else:
            answers.append(DNSAnswer(answer_type="A", ipv4=info.ip))
    if canon:
        answers.append(DNSAnswer(answer_type="CNAME", hostname=canon))
    if error is None and not addresses:
        error = failed(Failure.DNS_NO_ANSWER, Operation.RESOLVE)
    failure = None if error is None else error.failure
    t = _record_gai(trace, host, tid, t0, answers, failure, gai_code, tags)
    return DNSResult(addresses, error, Operation.RESOLVE, tid, t0, t)


def _record_gai(
    trace: Trace,
    host: str,
    tid: int,
    t0: float,
    answers: list[DNSAnswer],
    failure: str | None,
    gai_code: int | None,
    tags: Sequence[str],
) -> float:
    t = trace.elapsed()
    trace.queries.append(
        DNSQuery(
            answers=answers or None,
            engine="getaddrinfo",
            failure=failure,
            hostname=host,
            query_type="ANY",
            resolver_address="",
            t0=t0,
            t=t,
            tags=list(tags),
            transaction_id=tid,
            getaddrinfo_error=gai_code,
        )
    )
    return t


def system_resolver(path: Path = Path("/etc/resolv.conf")) -> str | None:
    """The first ``nameserver`` of resolv.conf as ``"ip:53"`` (``"[ip]:53"`` for IPv6), or None."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = parse_ip(parts[1])
            if addr is not None:
                return join_endpoint(str(addr), 53)
    return None


# --- reply parsing (pure) -------------------------------------------------------------------

#: the answer types we record, each only in class IN (an ``A`` in class CH is a different record
#: with a different rdata: its "address" is a 16-bit number, and other classes parse as generic
#: rdata with no address at all)
_RECORDED = {
    dns.rdatatype.A: "A",
    dns.rdatatype.AAAA: "AAAA",
    dns.rdatatype.CNAME: "CNAME",
}


@dataclass(frozen=True)
class ParsedReply:
    """What one DNS datagram says, classified. Never built from an exception escaping.

    ``accept`` is False for a datagram a stub must not take as the answer to its query (a wrong
    id, or a question that is not the one asked): it is recorded as a duplicate and the stub
    keeps waiting.
    """

    failure: str | None
    rcode: int | None = None
    answers: list[DNSAnswer] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    accept: bool = True


def parse_reply(
    raw: bytes,
    *,
    query_id: int,
    rdtype: dns.rdatatype.RdataType,
    qname: dns.name.Name | None = None,
) -> ParsedReply:
    """Classify a reply to the query ``query_id`` asking for ``rdtype`` (of ``qname`` when
    given). Total on any bytes: a datagram is always a fact, never an exception.

    Malformed wire data (truncation, compression loops, rdata of the wrong length, trailing
    junk) is ``dns_server_misbehaving``; a wrong id is ``dns_reply_with_wrong_query_id`` and a
    question other than ours ``dns_server_misbehaving``, both not accepted. Records of other
    classes or types are skipped; A/AAAA/CNAME in class IN become answers.
    """
    wrong_id = len(raw) < 2 or int.from_bytes(raw[:2], "big") != query_id
    try:
        msg = dns.message.from_wire(raw)
    except Exception:  # any malformed datagram: dnspython raises many types
        return ParsedReply(failure=Failure.DNS_SERVER_MISBEHAVING.value, accept=not wrong_id)
    rcode = int(msg.rcode())
    answers, addresses = _answers(msg, rdtype)
    accept = not wrong_id and _same_question(msg, rdtype, qname)
    failure: str | None
    if wrong_id:
        failure = Failure.DNS_REPLY_WITH_WRONG_QUERY_ID.value
    elif not accept or not msg.flags & dns.flags.QR:
        failure = Failure.DNS_SERVER_MISBEHAVING.value  # not our question, or not a response
    else:
        failure = classify_dns_rcode(rcode)
        if failure is None and not addresses:
            failure = Failure.DNS_NO_ANSWER.value
    return ParsedReply(
        failure=failure, rcode=rcode, answers=answers, addresses=addresses, accept=accept
    )


def _answers(
    msg: dns.message.Message, rdtype: dns.rdatatype.RdataType
) -> tuple[list[DNSAnswer], list[str]]:
    """The A/AAAA/CNAME records of class IN in the answer section, and the addresses of type
    ``rdtype`` among them. Reads only attributes those three rdata classes have."""
    answers: list[DNSAnswer] = []
    addresses: list[str] = []
    for rrset in msg.answer:
        kind = _RECORDED.get(rrset.rdtype)
        if kind is None or rrset.rdclass != dns.rdataclass.IN:
            continue
        ttl = int(rrset.ttl)
        for rd in rrset:
            if isinstance(rd, dns.rdtypes.IN.A.A):
                answers.append(DNSAnswer(answer_type="A", ipv4=str(rd.address), ttl=ttl))
            elif isinstance(rd, dns.rdtypes.IN.AAAA.AAAA):
                answers.append(DNSAnswer(answer_type="AAAA", ipv6=str(rd.address), ttl=ttl))
            elif isinstance(rd, dns.rdtypes.ANY.CNAME.CNAME):
                target = rd.target.to_text(omit_final_dot=True)
                answers.append(DNSAnswer(answer_type="CNAME", hostname=target, ttl=ttl))
                continue
            else:
                continue  # generic rdata of a known type: nothing we can read from it
            if rrset.rdtype == rdtype:
                addresses.append(str(rd.address))
    return answers, addresses


def _same_question(
    msg: dns.message.Message, rdtype: dns.rdatatype.RdataType, qname: dns.name.Name | None
) -> bool:
    """Whether the reply repeats our question (RFC 5452 9.1: a stub drops it otherwise).

    Without ``qname`` only the type is compared. A reply without a question section is accepted
    as real servers send such replies to errors (FORMERR, NOTIMP)."""
    if not msg.question:
        return True
    if len(msg.question) != 1:
        return False
    question = msg.question[0]
    if question.rdtype != rdtype or question.rdclass != dns.rdataclass.IN:
        return False
    return qname is None or question.name == qname


# --- UDP stub -------------------------------------------------------------------------------

Exchange = StageResult[ParsedReply | None]


@dataclass
class _Exchange:
    """Mutable state of one query while it runs (local to one task)."""

    error: OpFailure | None = None
    accepted: ParsedReply | None = None
    raw: bytes | None = None


async def lookup_udp(
    trace: Trace,
    host: str,
    *,
    resolver: str,
    timeouts: Timeouts,
    tags: Sequence[str] = (),
    net: Network = TRIO,
) -> DNSResult:
    """A and AAAA for ``host`` over UDP to ``resolver`` (``"ip:port"``), concurrently.

    Records one query per type and every extra reply in ``trace.dns_duplicates``. Raises
    ValueError only for a malformed ``resolver`` (a caller bug, not a network failure).
    """
    ip, port = split_endpoint(resolver)
    if parse_ip(ip) is None:
        raise ValueError(f"resolver is not an ip:port endpoint: {resolver!r}")
    results: dict[str, Exchange] = {}

    async def one(rdtype: dns.rdatatype.RdataType) -> None:
        results[rdtype.name] = await _query(
            trace, host, rdtype, ip=ip, port=port, timeouts=timeouts, tags=tags, net=net
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, dns.rdatatype.A)
        nursery.start_soon(one, dns.rdatatype.AAAA)
    exchanges = (results["A"], results["AAAA"])
    addresses: list[str] = []
    errors: list[OpFailure] = []
    rcode: int | None = None
    for res in exchanges:
        if res.value is not None:
            if rcode is None:
                rcode = res.value.rcode
            addresses.extend(a for a in res.value.addresses if a not in addresses)
        if res.error is not None:
            errors.append(res.error)
    t0 = min(r.t0 for r in exchanges)
    t = max(r.t for r in exchanges)
    tid = exchanges[0].transaction_id
    op = Operation.DNS_ROUND_TRIP
    if addresses:
        return DNSResult(addresses, None, op, tid, t0, t, rcode=rcode, exchanges=exchanges)
    # prefer an informative failure over "no answer" (AAAA often has none)
    informative = [e for e in errors if e.failure != Failure.DNS_NO_ANSWER]
    error = (informative or errors or [failed(Failure.DNS_NO_ANSWER, op)])[0]
    return DNSResult([], error, op, tid, t0, t, rcode=rcode, exchanges=exchanges)


async def _query(
    trace: Trace,
    host: str,
    rdtype: dns.rdatatype.RdataType,
    *,
    ip: str,
    port: int,
    timeouts: Timeouts,
    tags: Sequence[str],
    net: Network,
) -> Exchange:
    """One UDP exchange: the accepted reply (None if there was none) and the failure."""
    op = Operation.DNS_ROUND_TRIP
    tid = trace.new_transaction_id()
    t0 = trace.elapsed()
    resolver = join_endpoint(ip, port)
    ex = _Exchange()

    def event(
        parsed: ParsedReply | None, raw: bytes | None, failure: str | None, extra: Sequence[str]
    ) -> DNSQuery:
        return DNSQuery(
            answers=(parsed.answers or None) if parsed else None,
            engine="udp",
            failure=failure,
            hostname=host,
            query_type=rdtype.name,
            resolver_address=resolver,
            t0=t0,
            t=trace.elapsed(),
            tags=[*tags, *extra],
            transaction_id=tid,
            raw_response=base64.b64encode(raw).decode("ascii") if raw is not None else None,
            rcode=parsed.rcode if parsed else None,
        )

    def recorded() -> Exchange:
        """Record the query's event; the result carries the same times."""
        query_event = event(ex.accepted, ex.raw, None if ex.error is None else ex.error.failure, ())
        trace.queries.append(query_event)
        return StageResult(ex.accepted, ex.error, op, tid, t0, query_event.t)

    try:
        query = dns.message.make_query(host, rdtype)
        qname = query.question[0].name
        wire = query.to_wire()
    except Exception as exc:  # an unencodable name: recorded like any other failure
        ex.error = classify(exc, op)
        return recorded()
    sock: DatagramSocket | None = None
    try:
        with trio.move_on_after(timeouts.dns) as scope:
            try:
                sock = await net.open_udp(ip, port)
                await sock.send(wire)
                while ex.accepted is None:
                    raw = await sock.receive()
                    parsed = parse_reply(raw, query_id=query.id, rdtype=rdtype, qname=qname)
                    if not parsed.accept:
                        trace.dns_duplicates.append(
                            event(parsed, raw, parsed.failure, (DUPLICATE_TAG,))
                        )
                        continue
                    ex.accepted, ex.raw = parsed, raw
                    if parsed.failure is not None:
                        ex.error = failed(parsed.failure, op)
            except OSError as exc:
                ex.error = classify(exc, op)
        if scope.cancelled_caught and ex.accepted is None:
            ex.error = failed(Failure.GENERIC_TIMEOUT_ERROR, op)
        done = recorded()
        if ex.accepted is not None and sock is not None:
            await _listen_for_duplicates(sock, query.id, rdtype, qname, timeouts, trace, event)
    except trio.Cancelled:
        if not any(q.transaction_id == tid for q in trace.queries):
            trace.queries.append(event(None, None, Failure.INTERRUPTED.value, ()))
        raise
    finally:
        if sock is not None:
            sock.close()
    return done


async def _listen_for_duplicates(
    sock: DatagramSocket,
    query_id: int,
    rdtype: dns.rdatatype.RdataType,
    qname: dns.name.Name,
    timeouts: Timeouts,
    trace: Trace,
    event: Callable[[ParsedReply | None, bytes | None, str | None, Sequence[str]], DNSQuery],
) -> None:
    with trio.move_on_after(timeouts.dns_listen_window):
        while True:
            try:
                raw = await sock.receive()
            except OSError:
                return  # an ICMP error after the reply says nothing about the reply
            parsed = parse_reply(raw, query_id=query_id, rdtype=rdtype, qname=qname)
            trace.dns_duplicates.append(event(parsed, raw, parsed.failure, (DUPLICATE_TAG,)))
