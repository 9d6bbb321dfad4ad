"""What is published of a measurement, decided field by field from what each field is.

:class:`Publisher` walks a measurement (a JSON-ready dict, never modified) and builds the copy
that is written. It recognises fields by their shape, wherever they are (web, app tests, the
control's answer), and applies one rule to each kind:

=========================  ====================================================================
field                      published as
=========================  ====================================================================
any text (values, keys)    every form of the probe's addresses replaced with ``[scrubbed]``
                           (:mod:`probe.privacy.forms`); ``unknown_failure`` texts lose every
                           address, the probe's or not; text that hides the address in an
                           encoded form (``%31%39...``, ``&#49;...``, ``\\u0031...``) is
                           replaced whole with ``[withheld]``
HTTP body (a message with  ``Content-Encoding`` undone first (gzip, deflate, br, zstd), at most
headers and a ``body``)    ``decoded_cap`` bytes: the *decoded* body is published, scrubbed, with
                           ``x_body_decoded`` naming the codings (``body_is_truncated`` when the
                           cap cut it); a cut body (truncated, or its transaction failed)
                           loses the form characters at its very end (the start of an
                           address); a body that cannot be decoded is
                           withheld (``""``, and
                           ``x_body_withheld`` says why); a binary body holding the address as
                           raw bytes is withheld
TLS certificate            published untouched, or replaced by ``{"format": "base64", "data":
                           "", "x_withheld": <why>}`` when it names the address anywhere (a
                           signed blob is never rewritten)
DNS ``raw_response``       published untouched, or ``null`` with ``x_raw_response_withheld``
                           when the message names the address (the parsed ``answers`` are text
                           and are scrubbed)
other binary data          textual forms scrubbed; withheld when it holds the packed address
``probe_ip``               ``127.0.0.1``
=========================  ====================================================================

Every withheld field is also listed in ``test_keys.x_withheld`` (JSON path and reason), so a
reader knows what is missing and why. With ``include_ip`` (the volunteer chose to publish the
address) nothing is scrubbed or withheld, but bodies are still published decoded, so that the
facts have one shape whatever the choice.

The walk copies only what it changes (a measurement with nothing to hide costs one scan).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from probe.failures import scrub_ips
from probe.privacy.certs import names_address
from probe.privacy.content import codings_of, decode_body
from probe.privacy.forms import ALPHABET, parse_addresses
from probe.privacy.scrubber import Scrubber

WITHHELD = "[withheld]"
UNKNOWN_FAILURE_PREFIX = "unknown_failure"
#: decoded bodies are published up to this many bytes by default (the probe's body cap)
DEFAULT_DECODED_CAP = 1 << 19

_MEMO_LENGTH = 100
_MEMO_SIZE = 1 << 14
_HIDDEN = "the text hides the probe's address in an encoded form"
_PACKED = "the data holds the probe's address as raw bytes"


@dataclass
class _Notes:
    withheld: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, reason: str) -> None:
        self.withheld.append({"path": path, "reason": reason})


def _is_binary(value: dict[str, Any]) -> bool:
    return value.get("format") == "base64" and isinstance(value.get("data"), str)


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _binary(raw: bytes) -> dict[str, str]:
    return {"format": "base64", "data": base64.b64encode(raw).decode("ascii")}


def _maybe_binary(raw: bytes) -> str | dict[str, str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _binary(raw)


#: a cut body may end in the first characters of an address (``192.0.2`` of ``192.0.2.2``):
#: the characters of the forms at its very end are dropped (at most this many: a form, even
#: percent-encoded, is shorter)
_CUT_SPAN = 160
_CUT_TAIL = re.compile(f"[{ALPHABET}]+$")
_CUT_TAIL_B = re.compile(f"[{ALPHABET}]+$".encode("ascii"))


def _trim_cut(body: Any) -> Any:
    """A cut body without the characters of the forms at its end (text, bytes or base64).
    Only the last :data:`_CUT_SPAN` characters are looked at (a 512 KiB body costs nothing)."""
    if isinstance(body, str):
        tail = _CUT_TAIL.search(body[-_CUT_SPAN:])
        return body[: len(body) - len(tail.group())] if tail else body
    if isinstance(body, bytes):
        tail_b = _CUT_TAIL_B.search(body[-_CUT_SPAN:])
        return body[: len(body) - len(tail_b.group())] if tail_b else body
    if isinstance(body, dict) and _is_binary(body):
        raw = _b64decode(body["data"])
        if raw is not None:
            return {**body, "data": base64.b64encode(_trim_cut(raw)).decode("ascii")}
    return body


def _header_pairs(message: dict[str, Any]) -> list[tuple[str, str]]:
    """The message's headers as text pairs (from ``headers_list``, else ``headers``)."""
    pairs: list[tuple[str, str]] = []
    listed = message.get("headers_list")
    items: Iterable[Any]
    if isinstance(listed, list):
        items = listed
    elif isinstance(message.get("headers"), dict):
        items = message["headers"].items()
    else:
        return pairs
    for item in items:
        if isinstance(item, list | tuple) and len(item) == 2:
            name, value = item
            if isinstance(value, dict) and _is_binary(value):
                value = (_b64decode(value["data"]) or b"").decode("latin-1")
            if isinstance(name, str) and isinstance(value, str):
                pairs.append((name, value))
    return pairs


class Publisher:
    """Builds the published copy of measurements for one run (one set of addresses)."""

    def __init__(
        self,
        probe_ips: Iterable[str],
        *,
        include_ip: bool = False,
        decoded_cap: int = DEFAULT_DECODED_CAP,
    ) -> None:
        self.include_ip = include_ip
        self.decoded_cap = decoded_cap
        self.scrubber = Scrubber([] if include_ip else parse_addresses(probe_ips))
        self._hide = bool(self.scrubber)
        #: short texts seen before (keys, tags, failure strings repeat in every measurement):
        #: text -> (published text, withheld?); cleared when full
        self._memo: dict[str, tuple[str, bool]] = {}
        #: certificates judged before (DER -> why withheld, or None)
        self._certs: dict[bytes, str | None] = {}

    def publish(self, msmt: dict[str, Any]) -> dict[str, Any]:
        """The published copy of ``msmt`` (a new top-level dict and ``test_keys`` dict)."""
        notes = _Notes()
        out = self._value(msmt, "$", notes)
        out = dict(out) if out is msmt else out
        if isinstance(out.get("test_keys"), dict):
            out["test_keys"] = dict(out["test_keys"])
            if notes.withheld:
                out["test_keys"]["x_withheld"] = notes.withheld
        if not self.include_ip:
            out["probe_ip"] = "127.0.0.1"
        return out

    # --- the walk ---------------------------------------------------------------------------

    def _value(self, value: Any, path: str, notes: _Notes) -> Any:
        if isinstance(value, str):
            return self._text(value, path, notes)
        if isinstance(value, list):
            items = [self._value(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if isinstance(value, dict):
            if _is_binary(value):
                return self._blob(value, path, notes)
            return self._object(value, path, notes)
        return value

    def _object(
        self, obj: dict[str, Any], path: str, notes: _Notes, *, cut: bool = False
    ) -> dict[str, Any]:
        """A JSON object; ``cut``: it is the response of a transaction that failed, so its
        body may have been cut anywhere (by the server, or a censor's reset)."""
        body: dict[str, Any] | None = None
        if "body" in obj and ("headers_list" in obj or "headers" in obj):
            cut = cut or obj.get("body_is_truncated") is True
            body = self._body(obj, f"{path}.body", notes, cut=cut)
        out: dict[str, Any] = {}
        changed = body is not None and body.get("body") is not obj["body"]
        for key, value in obj.items():
            new_key = self._text(key, path, notes) if self._hide else key
            where = f"{path}.{new_key}"
            if body is not None and key in body:
                new = body.pop(key)
            elif key == "peer_certificates" and isinstance(value, list):
                new = self._certificates(value, where, notes)
            elif key == "response" and isinstance(value, dict) and obj.get("failure"):
                new = self._object(value, where, notes, cut=True)
            elif key == "raw_response" and isinstance(value, str):
                new, reason = self._dns_message(value)
                if reason is not None:
                    out["x_raw_response_withheld"] = reason
                    notes.add(where, reason)
            else:
                new = self._value(value, where, notes)
            out[new_key] = new
            changed = changed or new is not value or new_key is not key
        if body:  # what the body's rule adds (x_body_decoded, x_body_withheld)
            out.update(body)
            changed = True
        if not changed and len(out) == len(obj):
            return obj
        return out

    def _text(self, text: str, path: str, notes: _Notes) -> str:
        if not self._hide:
            return text
        short = len(text) <= _MEMO_LENGTH
        known = self._memo.get(text) if short else None
        if known is None:
            scanned = text
            if text.startswith(UNKNOWN_FAILURE_PREFIX):
                scanned = scrub_ips(text)  # free text: every address goes, ours or not
            out, hidden = self.scrubber.scan(scanned)
            known = (WITHHELD if hidden else out, hidden)
            if short:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[text] = known
        if known[1]:
            notes.add(path, _HIDDEN)
        return known[0]

    def _blob(self, blob: dict[str, Any], path: str, notes: _Notes) -> dict[str, Any]:
        if not self._hide:
            return blob
        raw = _b64decode(blob["data"])
        if raw is None:
            return self._object(blob, path, notes)
        new, hidden = self.scrubber.scan_data(raw)
        reason = _PACKED if self.scrubber.packed_in(raw) else _HIDDEN if hidden else None
        if reason is not None:
            notes.add(path, reason)
            return {**blob, "data": "", "x_withheld": reason}
        return blob if new is raw else {**blob, "data": base64.b64encode(new).decode("ascii")}

    # --- kinds of fields --------------------------------------------------------------------

    def _body(
        self, message: dict[str, Any], path: str, notes: _Notes, *, cut: bool
    ) -> dict[str, Any]:
        """The body of an HTTP message (and the keys its rule sets): decoded when it has a
        Content-Encoding, then checked like any text or binary data."""
        body = message["body"]
        codings = codings_of(_header_pairs(message))
        if not codings or body in (None, ""):
            if cut and self._hide:
                body = _trim_cut(body)
            return self._checked_body(self._value(body, path, notes), notes, {})
        if isinstance(body, dict) and _is_binary(body):
            raw = _b64decode(body["data"])
        else:
            raw = body.encode("utf-8") if isinstance(body, str) else None
        if raw is None:
            reason = "the body is neither text nor base64 data: it cannot be checked"
            notes.add(path, reason)
            return {"body": "", "x_body_withheld": reason}
        decoded = decode_body(raw, codings, cap=self.decoded_cap)
        if decoded.problem is not None:
            reason = f"{decoded.problem}: it cannot be checked for the probe's address"
            notes.add(path, reason)
            return {"body": "", "x_body_withheld": reason}
        extra: dict[str, Any] = {"x_body_decoded": ", ".join(codings)}
        data = decoded.data
        if decoded.truncated:
            extra["body_is_truncated"] = True
        if (decoded.truncated or cut) and self._hide:
            data = _trim_cut(data)
        # NULs make a body binary, not text: as text, JSON would write each as six bytes
        as_data = _binary(data) if b"\x00" in data else _maybe_binary(data)
        published = self._value(as_data, path, notes)
        return self._checked_body(published, notes, extra)

    @staticmethod
    def _checked_body(value: Any, notes: _Notes, extra: dict[str, Any]) -> dict[str, Any]:
        """A body the text/blob rules withheld becomes ``""`` with ``x_body_withheld``."""
        withheld = value == WITHHELD or (isinstance(value, dict) and "x_withheld" in value)
        if withheld:
            return {"body": "", **extra, "x_body_withheld": notes.withheld[-1]["reason"]}
        return {"body": value, **extra}

    def _certificates(self, chain: list[Any], path: str, notes: _Notes) -> list[Any]:
        if not self._hide:
            return chain
        out: list[Any] = []
        for i, cert in enumerate(chain):
            raw = _b64decode(cert["data"]) if isinstance(cert, dict) and _is_binary(cert) else None
            if raw is None:
                out.append(self._value(cert, f"{path}[{i}]", notes))
                continue
            if raw in self._certs:
                reason = self._certs[raw]
            else:  # a run meets the same certificates again and again: judge each once
                reason = names_address(raw, self.scrubber)
                if len(self._certs) >= _MEMO_SIZE >> 4:
                    self._certs.clear()
                self._certs[raw] = reason
            if reason is None:
                out.append(cert)
            else:
                notes.add(f"{path}[{i}]", reason)
                out.append({"format": "base64", "data": "", "x_withheld": reason})
        return chain if all(a is b for a, b in zip(out, chain, strict=True)) else out

    def _dns_message(self, text: str) -> tuple[str | None, str | None]:
        """A base64 DNS message: kept whole, or withheld (None) with the reason."""
        if not self._hide:
            return text, None
        raw = _b64decode(text)
        if raw is None:
            return self.scrubber.text(text), None
        if self.scrubber.packed_in(raw):
            return None, "the DNS message holds the probe's address (an A/AAAA record)"
        if self.scrubber.finds_data(raw, loose=True) or self.scrubber.hidden_in_data(
            raw, loose=True
        ):  # loose: in the wire format a name's labels are glued to length bytes
            return None, "the DNS message names the probe's address"
        return text, None
