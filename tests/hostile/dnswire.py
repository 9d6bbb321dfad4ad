"""DNS wire format written by hand, for replies that dnspython would refuse to build.

A censor's injector, a broken middlebox or a hostile resolver can send any datagram. These
helpers assemble one field by field (RFC 1035 4.1): a header, questions and resource records
whose class, type, TTL and rdata are whatever the test says, names as labels or compression
pointers (also pointers that loop or point past the end). The hypothesis strategies at the end
draw such messages; :mod:`tests.hostile.corpus.dns.craft` uses the same helpers for the kept corpus.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_PTR, TYPE_MX, TYPE_TXT = 1, 2, 5, 6, 12, 15, 16
TYPE_AAAA, TYPE_OPT, TYPE_DNAME, TYPE_TSIG, TYPE_ANY = 28, 41, 39, 250, 255
CLASS_IN, CLASS_CH, CLASS_HS, CLASS_NONE, CLASS_ANY = 1, 3, 4, 254, 255
#: QR | RD | RA
RESPONSE_FLAGS = 0x8180


def name(text: str) -> bytes:
    """An uncompressed name: ``"www.example.test"`` -> length-prefixed labels and a 0."""
    out = b""
    for label in text.strip(".").split("."):
        if label:
            raw = label.encode("latin-1")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def pointer(offset: int) -> bytes:
    """A compression pointer to ``offset`` (two bytes, top bits 11)."""
    return struct.pack("!H", 0xC000 | (offset & 0x3FFF))


def header(
    qid: int, *, flags: int = RESPONSE_FLAGS, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack("!HHHHHH", qid & 0xFFFF, flags & 0xFFFF, qd, an, ns, ar)


def question(qname: bytes, qtype: int = TYPE_A, qclass: int = CLASS_IN) -> bytes:
    return qname + struct.pack("!HH", qtype, qclass)


def record(
    owner: bytes, rtype: int, rclass: int, ttl: int, rdata: bytes, *, rdlength: int | None = None
) -> bytes:
    """A resource record; ``rdlength`` may lie about the rdata's length."""
    length = len(rdata) if rdlength is None else rdlength
    return owner + struct.pack("!HHIH", rtype, rclass, ttl & 0xFFFFFFFF, length & 0xFFFF) + rdata


#: offset of the first question's name in a message (right after the 12-byte header)
QNAME_OFFSET = 12


def message(
    qid: int,
    *,
    questions: Sequence[bytes] = (),
    answers: Sequence[bytes] = (),
    authority: Sequence[bytes] = (),
    additional: Sequence[bytes] = (),
    flags: int = RESPONSE_FLAGS,
    counts: tuple[int, int, int, int] | None = None,
) -> bytes:
    """A whole message; ``counts`` overrides the section counts (to lie about them)."""
    qd, an, ns, ar = counts or (len(questions), len(answers), len(authority), len(additional))
    body = b"".join([*questions, *answers, *authority, *additional])
    return header(qid, flags=flags, qd=qd, an=an, ns=ns, ar=ar) + body


def a_rdata(ip: str) -> bytes:
    return bytes(int(part) for part in ip.split("."))


# --- hypothesis: odd but plausible replies ------------------------------------------------------

#: classes and types weighted towards the odd ones that broke the parser once
CLASSES = st.sampled_from(
    [CLASS_IN, CLASS_IN, CLASS_CH, CLASS_HS, CLASS_NONE, CLASS_ANY, 0, 2, 65535]
)
TYPES = st.sampled_from(
    [TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_A, TYPE_AAAA, TYPE_NS, TYPE_SOA, TYPE_PTR, TYPE_MX,
     TYPE_TXT, TYPE_OPT, TYPE_DNAME, TYPE_TSIG, TYPE_ANY, 0, 65280, 65535]
)  # fmt: skip


@dataclass(frozen=True)
class Drawn:
    """A drawn reply and the question it answers."""

    qid: int
    qname: str
    qtype: int
    wire: bytes


@st.composite
def owners(draw: st.DrawFn) -> bytes:
    """An owner name: the question's (by pointer), a fresh one, or a bad pointer."""
    kind = draw(st.sampled_from(["qname", "qname", "fresh", "loop", "forward", "root"]))
    if kind == "qname":
        return pointer(QNAME_OFFSET)
    if kind == "fresh":
        return name(draw(st.sampled_from(["www.example.test", "evil.test", "a.b.c.d.e"])))
    if kind == "loop":
        return pointer(draw(st.integers(min_value=0, max_value=0x3FFF)))
    if kind == "forward":
        return pointer(draw(st.integers(min_value=200, max_value=0x3FFF)))
    return b"\x00"


@st.composite
def rdatas(draw: st.DrawFn, rtype: int) -> bytes:
    """Rdata of the right shape for the type most of the time, else random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=40))
    if rtype == TYPE_A:
        return draw(st.binary(min_size=4, max_size=4))
    if rtype == TYPE_AAAA:
        return draw(st.binary(min_size=16, max_size=16))
    if rtype in (TYPE_CNAME, TYPE_NS, TYPE_PTR, TYPE_DNAME):
        return draw(owners())
    return draw(st.binary(max_size=24))


@st.composite
def records(draw: st.DrawFn) -> bytes:
    rtype = draw(TYPES)
    rdata = draw(rdatas(rtype))
    lie = draw(st.sampled_from([None, None, None, 0, len(rdata) + 1, max(len(rdata) - 1, 0)]))
    ttl = draw(st.sampled_from([0, 60, 2**31, 2**32 - 1]))
    return record(draw(owners()), rtype, draw(CLASSES), ttl, rdata, rdlength=lie)


@st.composite
def replies(draw: st.DrawFn) -> Drawn:
    """A reply to ``www.example.test`` A/AAAA: odd classes, types, names, ids, counts, cuts."""
    qid = draw(st.integers(min_value=0, max_value=0xFFFF))
    qtype = draw(st.sampled_from([TYPE_A, TYPE_AAAA]))
    qname = "www.example.test"
    asked = draw(st.sampled_from([qname, qname, qname, "other.test", "WWW.Example.TEST"]))
    qs = [question(name(asked), draw(st.sampled_from([qtype, qtype, TYPE_A, TYPE_AAAA])))]
    qs = draw(st.sampled_from([qs, qs, qs, [], qs * 2]))
    answers = draw(st.lists(records(), max_size=5))
    extra = draw(st.lists(records(), max_size=2))
    reply_id = draw(st.sampled_from([qid, qid, qid, (qid + 1) & 0xFFFF]))
    flags = draw(st.sampled_from([RESPONSE_FLAGS, RESPONSE_FLAGS, 0x8183, 0x8380, 0x0100, 0x81FF]))
    counts = None
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        counts = draw(st.tuples(*[st.integers(min_value=0, max_value=0xFFFF)] * 4))
    wire = message(
        reply_id, questions=qs, answers=answers, additional=extra, flags=flags, counts=counts
    )
    cut = draw(st.sampled_from([len(wire)] * 5 + [draw(st.integers(0, len(wire)))]))
    return Drawn(qid=qid, qname=qname, qtype=qtype, wire=wire[:cut])
