"""Every written form of an address, as one regular expression (pure, no I/O).

A hostile server that knows the volunteer's address can echo it in any form a reader of the
published measurement would still recognise. For each address :func:`forms_pattern` builds a
regular expression matching, in any letter case:

IPv4 ``a.b.c.d``
    * dotted, each part in decimal (leading zeros allowed), octal (``0300``) or hex (``0xc0``),
      the parts separated by ``.``, ``%2e`` (URL-encoded), ``-`` or ``_`` (reverse-DNS host
      names such as ``ip-192-0-2-2`` or ``192-0-2-2.dyn.example``);
    * the same with the parts reversed (``2.2.0.192`` of ``2.2.0.192.in-addr.arpa``, and the
      ISPs whose host names list the parts backwards);
    * the short ``inet_aton`` forms ``a.b.cd`` and ``a.bcd`` (the last part a 16/24-bit number);
    * the whole address as one number: decimal (``3221225986``), hex (``0xc0000202``), octal;
    * inside IPv6: IPv4-mapped (``::ffff:c000:202``, ``::ffff:192.0.2.2``), IPv4-compatible
      (``::c000:202``), SIIT (``::ffff:0:c000:202``), NAT64 (``64:ff9b::c000:202``) in every
      IPv6 form below, and any 6to4 address of it (``2002:c000:202::/48``).

IPv6
    * every placement of ``::`` over any run of zero groups (also a run of one, and none at
      all), each group with or without leading zeros, upper or lower case (``fd00::2``,
      ``fd00::0:2``, ``FD00:0000:...:0002``), groups separated by ``:``, ``%3a`` or ``-`` (the
      ``ipv6-literal.net`` form), the last 32 bits optionally as a dotted quad;
    * the 32 hex digits alone (``/proc/net/if_inet6``) and the ``ip6.arpa`` nibbles.

A match must not be glued to a longer number or address: ``1.2.3.4`` does not match inside
``11.2.3.45``, ``fd00::2`` not inside ``afd00::23``. :func:`forms_pattern` gives both the
bounded pattern (for replacing) and the loose one (no boundaries: a superset, for checking
text where an escape may glue a character to an address, such as JSON's ``\\u0000``).

Every form is made only of the characters in :data:`ALPHABET` and is at least
:func:`min_length` long, which lets the scrubber look only at runs of those characters; and
every form contains one of the short literals of :func:`anchors`, which lets it skip, with one
cheap search, the runs that cannot hold a form (dates, times, hashes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: the characters every form is written with (hex digits, ``x`` of ``0x``, separators, ``%``)
ALPHABET = "0-9A-Fa-fxX:.%_-"
#: the shortest form of an IPv4 address (``1.0.0.1``)
MIN_LENGTH = 7

_SEP4 = r"(?:\.|%2e|-|_)"
_SEP6 = r"(?::|%3a|-)"
_DOT = r"(?:\.|%2e)"

#: boundaries: a decimal form is not glued to digits (nor to "digit." before / ".digit" after)
_BEFORE_DEC = r"(?<![0-9])(?<![0-9]\.)"
_AFTER_DEC = r"(?![0-9])(?!\.[0-9])"
#: a hex form (IPv6, its 32 digits) is not glued to hex digits; IPv6 not to a ":" before either;
#: a ``0x`` form needs nothing before it (the ``0x`` delimits it)
#: (but "%3a" before is a separator, as in "host%3a2001%3adb8...")
_BEFORE_HEX = r"(?<![0-9A-Fa-f])"
_BEFORE_V6 = r"(?:(?<=%3a)|(?<=%3A)|(?<![0-9A-Fa-f:]))"
_AFTER_HEX = r"(?![0-9A-Fa-f])"


def _number(value: int, *, decimal_zeros: bool = True) -> str:
    """One number in decimal (leading zeros allowed), octal (leading 0) or hex (0x)."""
    dec = f"0*{value}" if decimal_zeros else str(value)
    return f"(?:{dec}|0+{value:o}|0x0*{value:x})"


def _v4_whole(addr: ipaddress.IPv4Address) -> tuple[str, str]:
    """The address as one number: (decimal or octal form, hex form)."""
    n = int(addr)
    return f"(?:0*{n}|0+{n:o})", f"0x0*{n:x}"


def _group(value: int) -> str:
    digits = f"{value:x}"
    if value == 0:
        return "0{1,4}"
    if len(digits) == 4:
        return digits
    return f"0{{0,{4 - len(digits)}}}{digits}"


def _quad(groups: Sequence[int]) -> str:
    """The last 32 bits of an IPv6 address as a dotted quad (decimal parts)."""
    octets = [groups[0] >> 8, groups[0] & 0xFF, groups[1] >> 8, groups[1] & 0xFF]
    return r"\.".join(f"0*{o}" for o in octets)


def _v6_forms(addr: ipaddress.IPv6Address) -> list[str]:
    """Every ``::`` placement x leading zeros x separators, with and without a dotted tail."""
    groups = [int(g, 16) for g in addr.exploded.split(":")]
    out: list[str] = []
    for tail in (False, True):
        hexes = [_group(g) for g in (groups[:6] if tail else groups)]
        if tail:
            hexes.append(_quad(groups[6:]))
        count = len(hexes)
        zero = [g == 0 for g in groups[: 6 if tail else 8]] + ([False] if tail else [])

        def joined(items: list[str]) -> str:
            return _SEP6.join(items)

        out.append(joined(hexes))
        for i in range(count):
            for j in range(i + 1, count + 1):
                if not all(zero[i:j]):
                    break
                left, right = hexes[:i], hexes[j:]
                out.append(f"{joined(left)}{_SEP6}{_SEP6}{joined(right)}")
    return out


def _embedded(addr: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    n = int(addr)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | n),  # ::ffff:a.b.c.d (mapped)
        ipaddress.IPv6Address(n),  # ::a.b.c.d (compatible)
        ipaddress.IPv6Address((0xFFFF << 48) | n),  # ::ffff:0:a.b.c.d (SIIT)
        ipaddress.IPv6Address((0x64FF9B << 96) | n),  # 64:ff9b::a.b.c.d (NAT64)
    ]


def _six_to_four(addr: ipaddress.IPv4Address) -> str:
    """Any address of the 6to4 prefix 2002:<v4>::/48."""
    n = int(addr)
    head = _SEP6.join([_group(0x2002), _group(n >> 16), _group(n & 0xFFFF)])
    return f"{head}(?:{_SEP6}[0-9A-Fa-f]{{0,4}})+"


def parse_addresses(texts: Iterable[str]) -> list[IPAddress]:
    """Distinct addresses from text (brackets and zone ids tolerated); ValueError names a bad
    one. The unspecified addresses (``0.0.0.0``, ``::``) name nobody and are left out."""
    out: list[IPAddress] = []
    for raw in texts:
        text = raw.strip().strip("[]").split("%", 1)[0]
        if not text:
            continue
        try:
            addr = ipaddress.ip_address(text)
        except ValueError as exc:
            raise ValueError(f"not an IP address to scrub: {raw!r}") from exc
        if addr not in out and not addr.is_unspecified:
            out.append(addr)
    return out


def min_length(addresses: Sequence[IPAddress]) -> int:
    """The length of the shortest form of any of ``addresses`` (IPv6: compressed, or the 32
    hex digits alone)."""
    lengths = [MIN_LENGTH if a.version == 4 else min(len(a.compressed), 32) for a in addresses]
    return min(lengths, default=MIN_LENGTH)


@dataclass(frozen=True, slots=True)
class FormGroup:
    """Some forms of one address, as regular expressions, and literals one of which every one
    of those forms contains (the scrubber runs ``bounded`` only where an anchor is)."""

    anchors: tuple[str, ...]
    #: with boundaries: for replacing
    bounded: str
    #: without: a superset, for checking text where an escape may glue a form to a neighbour
    loose: str
    #: groups are applied in this order: IPv6 forms (0) before the others, so that
    #: ``::ffff:192.0.2.2`` goes whole rather than as its IPv4 tail
    order: int = 1


def _group_of(forms: Sequence[str], anchors: Iterable[str], before: str, after: str, *,
              order: int = 1) -> FormGroup:  # fmt: skip
    alternation = "|".join(sorted(forms, key=len, reverse=True))  # longest first
    return FormGroup(
        anchors=tuple(dict.fromkeys(a.lower() for a in anchors)),
        bounded=f"{before}(?:{alternation}){after}",
        loose=f"(?:{alternation})",
        order=order,
    )


def form_groups(addresses: Sequence[IPAddress]) -> list[FormGroup]:
    """Every form of every address, in groups that share anchors, in the order to apply."""
    groups: list[FormGroup] = []
    for addr in addresses:
        if isinstance(addr, ipaddress.IPv4Address):
            groups.extend(_v4_groups(addr))
        else:
            groups.extend(_v6_groups(addr))
    return sorted(groups, key=lambda g: g.order)


def _v4_groups(addr: ipaddress.IPv4Address) -> list[FormGroup]:
    octets = list(addr.packed)
    n = int(addr)
    parts = [_number(o) for o in octets]
    a, b, cd, bcd = octets[0], octets[1], n & 0xFFFF, n & 0xFFFFFF
    out = [
        _group_of(
            [_SEP4.join(parts), _SEP4.join(reversed(parts))],
            _reps(_best(octets)),  # dotted and reversed hold all four parts
            _BEFORE_DEC,
            _AFTER_DEC,
        )
    ]
    # the short inet_aton forms, unless so short that they are ordinary text ("1.1" of 1.0.0.1)
    if len(f"{a}.{b}.{cd}") >= MIN_LENGTH:
        short3 = _DOT.join([parts[0], parts[1], _number(cd)])
        out.append(_group_of([short3], _reps(_best([a, b, cd])), _BEFORE_DEC, _AFTER_DEC))
    if len(f"{a}.{bcd}") >= MIN_LENGTH:
        short2 = _DOT.join([parts[0], _number(bcd)])
        out.append(_group_of([short2], _reps(_best([a, bcd])), _BEFORE_DEC, _AFTER_DEC))
    if n >= 1 << 24:  # 0.x.x.x is no host's address: "1" would match everywhere
        whole_dec, whole_hex = _v4_whole(addr)
        out.append(_group_of([whole_dec], [str(n), f"0{n:o}"], _BEFORE_DEC, _AFTER_DEC))
        out.append(_group_of([whole_hex], [f"{n:x}"], "", _AFTER_HEX))
    for embedded in _embedded(addr):
        out.append(
            _group_of(_v6_forms(embedded), _v6_anchors(embedded), _BEFORE_V6, _AFTER_HEX, order=0)
        )
    six = f"{n >> 16:x}" if n >> 16 else f"{n & 0xFFFF:x}"
    out.append(_group_of([_six_to_four(addr)], [six], _BEFORE_V6, _AFTER_HEX, order=0))
    return out


def _v6_groups(addr: ipaddress.IPv6Address) -> list[FormGroup]:
    groups = [int(g, 16) for g in addr.exploded.split(":")]
    digits = addr.exploded.replace(":", "")
    best = _longest([g for g in groups if g] or [0])
    return [
        _group_of(_v6_forms(addr), _v6_anchors(addr), _BEFORE_V6, _AFTER_HEX, order=0),
        _group_of([digits], [f"{best:x}"], _BEFORE_HEX, _AFTER_HEX),
        _group_of(
            [_DOT.join(reversed(digits))],
            _hex_anchors(best)[1:],  # the nibbles reversed, with "." or "%2e"
            _BEFORE_HEX,
            _AFTER_HEX,
        ),
    ]


def forms_pattern(addresses: Sequence[IPAddress]) -> tuple[str, str] | None:
    """(bounded, loose) regular expressions of every form of every address, in one; None for
    none. Compile them with ``re.IGNORECASE``."""
    groups = form_groups(addresses)
    if not groups:
        return None
    return "|".join(g.bounded for g in groups), "|".join(g.loose for g in groups)


# --- anchors: a literal every form contains -----------------------------------------------------
def _reps(value: int) -> list[str]:
    """Literals one of which every written form of the number ``value`` contains: its decimal
    digits, ``0`` + its octal digits, and its hex digits (or the ``x`` of ``0x`` when they are
    too few to be worth a search)."""
    hexa = f"{value:x}"
    return [str(value), f"0{value:o}", hexa if len(hexa) >= 3 else "x"]


def _best(values: Iterable[int]) -> int:
    """The value whose weakest literal is longest (the rarest in ordinary text)."""
    return max(values, key=lambda v: (min(len(r) for r in _reps(v)), v))


def _hex_anchors(group: int) -> list[str]:
    """A group's digits, and its nibbles reversed with the ip6.arpa separators."""
    digits = f"{group:x}"
    return [digits, ".".join(reversed(digits)), "%2e".join(reversed(digits))]


def _longest(groups: Iterable[int]) -> int:
    return max(groups, key=lambda g: (len(f"{g:x}"), g))


def _v6_anchors(addr: ipaddress.IPv6Address) -> list[str]:
    groups = [int(g, 16) for g in addr.exploded.split(":")]
    head = [g for g in groups[:6] if g]
    if head:  # every form keeps the first six groups in hex (the plain/arpa forms too)
        return _hex_anchors(_longest(head))
    out = _hex_anchors(_longest(groups[6:]))  # e.g. ::c000:202
    tail = [groups[6] >> 8, groups[6] & 0xFF, groups[7] >> 8, groups[7] & 0xFF]
    out.append(str(max(tail, key=lambda o: (len(str(o)), o))))  # e.g. ::192.0.2.2
    return out


def anchors(addresses: Sequence[IPAddress]) -> list[str]:
    """Short literals (lower case) such that every form of every address contains one."""
    found = {a for group in form_groups(addresses) for a in group.anchors}
    return sorted(found, key=len, reverse=True)
