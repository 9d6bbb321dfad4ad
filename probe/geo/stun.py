"""A small STUN codec (RFC 5389): the Binding request and the mapped address in its answer.

Only what public-IP discovery needs, and no I/O:

* :func:`binding_request` builds a 20-byte Binding request (no attributes) for a 12-byte
  transaction id.
* :func:`parse_binding_response` checks a datagram is the Binding *success* response to that
  transaction and returns the reflexive address: XOR-MAPPED-ADDRESS (0x0020) when present, else
  MAPPED-ADDRESS (0x0001, what RFC 3489 servers send). Attributes are walked in order, padding
  to 4 bytes included; unknown attributes are skipped.

Errors: :class:`StunError` is the only exception :func:`parse_binding_response` raises, for
anything that is not such an answer (too short, wrong cookie or transaction, error response,
truncated attribute, unknown address family, no address at all). A hypothesis test holds it to
that on arbitrary bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MAGIC_COOKIE = 0x2112A442
HEADER = struct.Struct("!HHI12s")  # type, length, cookie, transaction id

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_ERROR_CODE = 0x0009

FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02


class StunError(ValueError):
    """The datagram is not a usable Binding success response (the message says why)."""


@dataclass(frozen=True, slots=True)
class MappedAddress:
    ip: str
    port: int
    #: True when it came from XOR-MAPPED-ADDRESS
    xor: bool


def binding_request(transaction_id: bytes) -> bytes:
    """A Binding request without attributes."""
    if len(transaction_id) != 12:
        raise ValueError("a STUN transaction id is 12 bytes")
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, transaction_id)


def _address(value: bytes, *, xor_key: bytes | None) -> tuple[str, int]:
    if len(value) < 4:
        raise StunError("address attribute too short")
    family = value[1]
    port = int.from_bytes(value[2:4], "big")
    size = {FAMILY_IPV4: 4, FAMILY_IPV6: 16}.get(family)
    if size is None:
        raise StunError(f"unknown address family {family}")
    raw = value[4 : 4 + size]
    if len(raw) != size:
        raise StunError("address attribute truncated")
    if xor_key is not None:
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, xor_key[:size], strict=True))
    return str(ipaddress.ip_address(raw)), port


def parse_binding_response(data: bytes, *, transaction_id: bytes) -> MappedAddress:
    """The reflexive address in a Binding success response to ``transaction_id``."""
    if len(data) < HEADER.size:
        raise StunError("shorter than a STUN header")
    msg_type, length, cookie, txid = HEADER.unpack_from(data)
    if msg_type & 0xC000:
        raise StunError("not a STUN message (first two bits set)")
    if cookie != MAGIC_COOKIE:
        raise StunError("wrong magic cookie")
    if txid != transaction_id:
        raise StunError("another transaction")
    if length % 4 or HEADER.size + length != len(data):
        raise StunError("length field does not match the datagram")
    if msg_type == BINDING_ERROR:
        raise StunError("binding error response")
    if msg_type != BINDING_SUCCESS:
        raise StunError(f"not a binding success response (type {msg_type:#06x})")
    xor_key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
    mapped: MappedAddress | None = None
    offset = HEADER.size
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunError("truncated attribute header")
        attr_type, attr_len = struct.unpack_from("!HH", data, offset)
        value = data[offset + 4 : offset + 4 + attr_len]
        if len(value) != attr_len:
            raise StunError("truncated attribute")
        offset += 4 + attr_len + (-attr_len % 4)
        if attr_type == ATTR_XOR_MAPPED_ADDRESS:
            ip, port = _address(value, xor_key=xor_key)
            return MappedAddress(ip=ip, port=port, xor=True)
        if attr_type == ATTR_MAPPED_ADDRESS and mapped is None:
            ip, port = _address(value, xor_key=None)
            mapped = MappedAddress(ip=ip, port=port, xor=False)
    if offset != len(data):
        raise StunError("attribute padding runs past the datagram")
    if mapped is None:
        raise StunError("no mapped address in the response")
    return mapped


def encode_address(ip: str, port: int, *, transaction_id: bytes, xor: bool) -> bytes:
    """A (XOR-)MAPPED-ADDRESS attribute, header included: for responders (and tests)."""
    addr = ipaddress.ip_address(ip)
    raw = addr.packed
    family = FAMILY_IPV4 if addr.version == 4 else FAMILY_IPV6
    attr_type = ATTR_XOR_MAPPED_ADDRESS if xor else ATTR_MAPPED_ADDRESS
    if xor:
        key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, key[: len(raw)], strict=True))
    value = bytes([0, family]) + port.to_bytes(2, "big") + raw
    return struct.pack("!HH", attr_type, len(value)) + value


def binding_response(transaction_id: bytes, attributes: bytes) -> bytes:
    """A Binding success response carrying already-encoded ``attributes``."""
    return HEADER.pack(BINDING_SUCCESS, len(attributes), MAGIC_COOKIE, transaction_id) + attributes
