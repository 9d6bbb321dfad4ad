"""Writes ``replies.toml``, the kept corpus of crafted DNS replies (run it to add an entry).

Each entry is one datagram (hex) answering the query ``qid``/``qname``/``qtype``, the reason it
is here, and what :func:`probe.stages.dns.parse_reply` must say about it: the failure string,
the addresses a stub would use, and whether a stub takes it as the answer (``accept``). The
expectations are written by hand here, never computed by the parser under test.

    .venv/bin/python -m tests.hostile.corpus.dns.craft     # rewrites replies.toml
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.hostile.dnswire import (
    CLASS_ANY,
    CLASS_CH,
    CLASS_HS,
    CLASS_IN,
    CLASS_NONE,
    QNAME_OFFSET,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_OPT,
    TYPE_TXT,
    a_rdata,
    message,
    name,
    pointer,
    question,
    record,
)

QID = 0x1234
QNAME = "www.example.test"
Q_A = question(name(QNAME), TYPE_A)
Q_AAAA = question(name(QNAME), TYPE_AAAA)
OWNER = pointer(QNAME_OFFSET)
V4 = a_rdata("192.0.2.1")
V6 = bytes.fromhex("20010db8000000000000000000000001")
MISBEHAVING = "dns_server_misbehaving"
NO_ANSWER = "dns_no_answer"


def _a(rclass: int = CLASS_IN, rdata: bytes = V4, **kw: Any) -> bytes:
    return record(OWNER, TYPE_A, rclass, 60, rdata, **kw)


#: the rdata of a CH-class A record (RFC 1035 3.4.1 for Chaosnet): a domain and a 16-bit address
CH_A_RDATA = name("chaos.test") + b"\x00\x2a"


def _rdata_of_class(rclass: int) -> bytes:
    """A well-formed A rdata for that class: CH has its own shape, the others read 4 bytes."""
    return CH_A_RDATA if rclass == CLASS_CH else V4


def entries() -> list[dict[str, Any]]:
    ok = message(QID, questions=[Q_A], answers=[_a()])
    out: list[dict[str, Any]] = []

    def add(
        entry: str, why: str, wire: bytes, failure: str | None, addresses: list[str], *,
        accept: bool = True, qtype: str = "A",
    ) -> None:  # fmt: skip
        out.append(
            {"name": entry, "why": why, "qid": QID, "qname": QNAME, "qtype": qtype,
             "hex": wire.hex(), "failure": failure, "addresses": addresses, "accept": accept}
        )  # fmt: skip

    add("ok", "a plain answer: the baseline", ok, None, ["192.0.2.1"])
    odd_classes = [(CLASS_CH, "ch"), (CLASS_HS, "hs"), (CLASS_NONE, "none"), (CLASS_ANY, "any"),
                   (0, "zero"), (2, "cs"), (65535, "65535")]  # fmt: skip
    for rclass, label in odd_classes:
        add(
            f"a-class-{label}",
            "issue 12: an A record of another class has no .address (generic rdata, or CH's "
            "16-bit address); the UDP queries vanished and x_failure became an ExceptionGroup",
            message(QID, questions=[Q_A], answers=[_a(rclass, _rdata_of_class(rclass))]),
            NO_ANSWER,
            [],
        )
    add(
        "a-class-ch-4-bytes",
        "a CH-class A whose rdata is an IPv4 address: not the CH A shape (name + 16 bits)",
        message(QID, questions=[Q_A], answers=[_a(CLASS_CH)]),
        MISBEHAVING,
        [],
    )
    add(
        "a-class-ch-beside-in",
        "an odd-class A next to a good one: the good one is the answer",
        message(QID, questions=[Q_A], answers=[_a(CLASS_CH, CH_A_RDATA), _a()]),
        None,
        ["192.0.2.1"],
    )
    add(
        "aaaa-class-ch",
        "an AAAA record of class CH (generic rdata)",
        message(QID, questions=[Q_AAAA], answers=[record(OWNER, TYPE_AAAA, CLASS_CH, 60, V6)]),
        NO_ANSWER,
        [],
        qtype="AAAA",
    )
    add(
        "cname-class-hs",
        "a CNAME of class HS is skipped, the A after it is used",
        message(QID, questions=[Q_A], answers=[
            record(OWNER, TYPE_CNAME, CLASS_HS, 60, name("x.test")), _a()]),
        None,
        ["192.0.2.1"],
    )  # fmt: skip
    add(
        "a-rdata-3-bytes",
        "an A record whose rdata is 3 bytes: malformed",
        message(QID, questions=[Q_A], answers=[_a(rdata=V4[:3])]),
        MISBEHAVING,
        [],
    )
    add(
        "a-rdata-16-bytes",
        "an A record carrying 16 bytes (an IPv6 address in an A)",
        message(QID, questions=[Q_A], answers=[_a(rdata=V6)]),
        MISBEHAVING,
        [],
    )
    add(
        "a-rdlength-lies",
        "rdlength says 200, the datagram ends first",
        message(QID, questions=[Q_A], answers=[_a(rdlength=200)]),
        MISBEHAVING,
        [],
    )
    add(
        "compression-loop-self",
        "the answer's owner name is a pointer to itself",
        message(QID, questions=[Q_A], answers=[
            record(pointer(12 + len(Q_A)), TYPE_A, CLASS_IN, 60, V4)]),
        MISBEHAVING,
        [],
    )  # fmt: skip
    loop_q = pointer(QNAME_OFFSET + 2) + pointer(QNAME_OFFSET)
    add(
        "compression-loop-two",
        "two pointers pointing at each other in the question",
        message(QID, questions=[loop_q + b"\x00\x01\x00\x01"], answers=[]),
        MISBEHAVING,
        [],
    )
    add(
        "compression-pointer-past-end",
        "a pointer past the end of the datagram",
        message(QID, questions=[Q_A], answers=[record(pointer(0x3FFF), TYPE_A, CLASS_IN, 60, V4)]),
        MISBEHAVING,
        [],
    )
    add(
        "cname-target-loop",
        "a CNAME whose target is a looping pointer",
        message(QID, questions=[Q_A], answers=[
            record(OWNER, TYPE_CNAME, CLASS_IN, 60, pointer(12 + len(Q_A) + 12))]),
        MISBEHAVING,
        [],
    )  # fmt: skip
    for cut, label in ((0, "empty"), (1, "one-byte"), (11, "short-header"), (12, "header-only"),
                       (20, "mid-question"), (len(ok) - 3, "mid-answer")):  # fmt: skip
        # under 2 bytes there is no id: not ours to accept
        add(f"truncated-{label}", f"the good reply cut after {cut} bytes", ok[:cut], MISBEHAVING,
            [], accept=cut >= 2)  # fmt: skip
    add(
        "trailing-junk",
        "a good reply followed by junk bytes",
        ok + b"\xde\xad\xbe\xef",
        MISBEHAVING,
        [],
    )
    add(
        "tc-no-answer",
        "TC set (a stub would retry over TCP) and no answer",
        message(QID, questions=[Q_A], flags=0x8380),
        NO_ANSWER,
        [],
    )
    add(
        "wrong-id",
        "an answer with another id (an off-path injector guessing): never accepted",
        message(QID + 1, questions=[Q_A], answers=[_a()]),
        "dns_reply_with_wrong_query_id",
        ["192.0.2.1"],
        accept=False,
    )
    add(
        "mismatched-question-name",
        "an answer to another name: a stub drops it",
        message(QID, questions=[question(name("evil.test"))], answers=[_a()]),
        MISBEHAVING,
        ["192.0.2.1"],
        accept=False,
    )
    add(
        "mismatched-question-type",
        "an AAAA question echoed in the reply to our A query",
        message(QID, questions=[Q_AAAA], answers=[_a()]),
        MISBEHAVING,
        ["192.0.2.1"],
        accept=False,
    )
    add(
        "question-case-differs",
        "the question echoed in another letter case (0x20 randomisation): the same question",
        message(QID, questions=[question(name("WWW.Example.TEST"))], answers=[_a()]),
        None,
        ["192.0.2.1"],
    )
    add(
        "two-questions",
        "two questions in a reply to one",
        message(QID, questions=[Q_A, Q_A], answers=[_a()]),
        MISBEHAVING,
        ["192.0.2.1"],
        accept=False,
    )
    add(
        "no-question-formerr",
        "FORMERR without a question section, as real servers send",
        message(QID, questions=[], flags=0x8181),
        MISBEHAVING,
        [],
    )
    add(
        "not-a-response",
        "QR clear: our query echoed back",
        message(QID, questions=[Q_A], flags=0x0100),
        MISBEHAVING,
        [],
    )
    add(
        "nxdomain-with-answer",
        "NXDOMAIN that still carries an A record",
        message(QID, questions=[Q_A], answers=[_a()], flags=0x8183),
        "dns_nxdomain_error",
        ["192.0.2.1"],
    )
    opt_badvers = record(b"\x00", TYPE_OPT, 1232, 0x01000000, b"")
    add(
        "extended-rcode-badvers",
        "an OPT record making the rcode 16 (BADVERS)",
        message(QID, questions=[Q_A], additional=[opt_badvers]),
        MISBEHAVING,
        [],
    )
    add(
        "opt-in-answer",
        "an OPT record in the answer section",
        message(QID, questions=[Q_A], answers=[record(b"\x00", TYPE_OPT, 1232, 0, b"")]),
        MISBEHAVING,
        [],
    )
    add(
        "counts-lie",
        "the header announces 65535 answers and carries one",
        message(QID, questions=[Q_A], answers=[_a()], counts=(1, 0xFFFF, 0, 0)),
        MISBEHAVING,
        [],
    )
    add(
        "ttl-max",
        "TTL 2^32-1 (top bit set)",
        message(QID, questions=[Q_A], answers=[record(OWNER, TYPE_A, CLASS_IN, 2**32 - 1, V4)]),
        None,
        ["192.0.2.1"],
    )
    add(
        "unknown-type",
        "a record of type 65280 (private use) then the A",
        message(QID, questions=[Q_A], answers=[
            record(OWNER, 65280, CLASS_IN, 60, b"\x01\x02\x03"), _a()]),
        None,
        ["192.0.2.1"],
    )  # fmt: skip
    add(
        "txt-only",
        "a TXT answer to an A query",
        message(QID, questions=[Q_A], answers=[record(OWNER, TYPE_TXT, CLASS_IN, 60, b"\x02hi")]),
        NO_ANSWER,
        [],
    )
    weird = b"\x05a\x00\xffb.\x04test\x00"
    add(
        "cname-binary-labels",
        "a CNAME target with NUL, 0xff and a dot inside labels",
        message(QID, questions=[Q_A], answers=[record(OWNER, TYPE_CNAME, CLASS_IN, 60, weird)]),
        NO_ANSWER,
        [],
    )
    many = [_a(rdata=bytes([10, 0, i // 256, i % 256])) for i in range(256)]
    add(
        "thousand-answers",
        "256 A records in one datagram (bounded by the datagram size)",
        message(QID, questions=[Q_A], answers=many),
        None,
        [f"10.0.{i // 256}.{i % 256}" for i in range(256)],
    )
    return out


def _toml_value(value: Any) -> str:
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(items: list[dict[str, Any]]) -> str:
    lines = [
        "# Kept corpus of crafted DNS replies: read by tests/hostile/test_dns.py.",
        '# Written by tests.hostile.corpus.dns.craft.py; failure "null" means no failure.',
        "",
    ]
    for item in items:
        lines.append("[[reply]]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in item.items())
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(__file__).with_name("replies.toml")
    path.write_text(render(entries()))
    print(f"wrote {path}")
