"""Finding and replacing the written forms of a fixed set of addresses, in text and bytes.

:class:`Scrubber` compiles the groups of forms of :func:`probe.privacy.forms.form_groups` once
per set of addresses (a run scrubs thousands of measurements with the same set) and applies them
only where a form can be: runs of at least :func:`~probe.privacy.forms.min_length` characters of
:data:`~probe.privacy.forms.ALPHABET` that contain an anchor literal, and there only the groups
whose anchor the run contains. A 500 KB page costs a few milliseconds, most of it the scan for
runs (``make bench`` prints the figures).

Besides the forms themselves it answers three questions the publication policy asks:

* :meth:`Scrubber.hidden_in_text`: does the address appear once the text is percent-decoded
  (``%31%39%32...``), HTML-entity-decoded (``&#49;&#57;...``) or unescaped as JavaScript/JSON
  (``\\u0031...``)? Such text is withheld whole rather than rewritten.
* :meth:`Scrubber.packed_in`: does a blob hold the address as raw bytes (4 for IPv4, 16 for
  IPv6), as an IP SAN in a certificate or an A/AAAA record in a DNS message does?
* the same checks on bytes (:meth:`Scrubber.data`, :meth:`Scrubber.finds_data`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import unquote

from probe.privacy.forms import ALPHABET, IPAddress, form_groups, min_length

SCRUBBED = "[scrubbed]"
_JS_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})")
#: a character reference or escape of one of the forms' characters (digits, hex letters, x,
#: ":", ".", "%", "_", "-"): where a form may hide (``&#39;`` and the like do not count)
_DEC = r"0*(?:3[7]|4[5-9]|5[0-8]|6[5-9]|70|88|9[57-9]|10[0-2]|120)"
_HEX = r"0*(?:2[5de]|3[0-9aA]|4[1-6]|5[8fF]|6[1-6]|78)"
_ENCODED_CHAR = re.compile(
    rf"&#{_DEC};?|&#[xX]{_HEX};?|&(?:period|colon|lowbar|hyphen|dash|percnt);"
    rf"|\\u00{_HEX[2:]}|\\x{_HEX[2:]}",
    re.IGNORECASE,
)
#: a form written with references/escapes is at most this long (39 characters x 8)
_ENCODED_SPAN = 320


def _unescape_js(text: str) -> str:
    return _JS_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


class Scrubber:
    """Replaces every written form of ``addresses`` with ``[scrubbed]``."""

    def __init__(self, addresses: Sequence[IPAddress]) -> None:
        self.addresses = list(addresses)
        self.packed = [a.packed for a in self.addresses]
        #: runs of the forms' characters, as long as the shortest form at least
        self.min_length = min_length(self.addresses)
        self._gate = re.compile(f"[{ALPHABET}]{{{self.min_length},}}")
        groups = form_groups(self.addresses)
        flags = re.IGNORECASE
        self._bounded = [re.compile(g.bounded, flags) for g in groups]
        self._loose = [re.compile(g.loose, flags) for g in groups]
        #: anchor -> the groups whose forms all contain it
        self._by_anchor: dict[str, list[int]] = {}
        for index, group in enumerate(groups):
            for anchor in group.anchors:
                self._by_anchor.setdefault(anchor, []).append(index)
        literals = sorted(self._by_anchor, key=len, reverse=True)
        pattern = "|".join(re.escape(a) for a in literals) or "(?!)"
        self._anchor = re.compile(pattern, flags)

    def _groups_in(self, chunk: str) -> list[int]:
        """The groups whose anchors occur in ``chunk`` (overlapping occurrences too)."""
        low = chunk.lower()
        found = {i for anchor, ids in self._by_anchor.items() if anchor in low for i in ids}
        return sorted(found)

    def __bool__(self) -> bool:
        return bool(self.addresses)

    # --- text ---------------------------------------------------------------------------------

    def scan(self, value: str) -> tuple[str, bool]:
        """``value`` with every form replaced (the same object when there is none), and whether
        a form hides in it encoded (percent-, entity- or escape-encoded): one pass, plus one
        over the rare stretches of entities and escapes."""
        if not self._bounded or len(value) < self.min_length:
            return value, False
        anchor, bounded = self._anchor, self._bounded
        hidden = False

        def run(match: re.Match[str]) -> str:
            nonlocal hidden
            chunk = match.group()
            if anchor.search(chunk):
                for index in self._groups_in(chunk):
                    chunk = bounded[index].sub(SCRUBBED, chunk)
            if "%" in chunk and not hidden:
                decoded = unquote(chunk, errors="replace")
                hidden = decoded != chunk and self.finds_text(decoded)
            return chunk

        out = self._gate.sub(run, value)
        if not hidden and ("&" in out or "\\" in out):
            hidden = self._hidden_escapes(out)
        return (value if out == value else out), hidden

    def text(self, value: str) -> str:
        """``value`` with every form replaced (the same object when there is none)."""
        return self.scan(value)[0]

    def finds_text(self, value: str, *, loose: bool = False) -> bool:
        """Whether a form occurs in ``value`` (``loose``: also glued to other characters)."""
        patterns = self._loose if loose else self._bounded
        if not patterns or len(value) < self.min_length:
            return False
        for match in self._gate.finditer(value):
            chunk = match.group()
            if self._anchor.search(chunk) and any(
                patterns[i].search(chunk) for i in self._groups_in(chunk)
            ):
                return True
        return False

    def _hidden_escapes(self, value: str, *, loose: bool = False) -> bool:
        """Forms written with HTML character references or JavaScript escapes: the text around
        each reference of a form character, decoded, is searched for forms."""
        checked = -1
        for match in _ENCODED_CHAR.finditer(value):
            if match.start() < checked:
                continue  # inside the stretch already decoded
            start, checked = max(0, match.start() - _ENCODED_SPAN), match.end() + _ENCODED_SPAN
            decoded = html.unescape(_unescape_js(value[start:checked]))
            if self.finds_text(decoded, loose=loose):
                return True
        return False

    def hidden_in_text(self, value: str, *, loose: bool = False) -> bool:
        """Whether a form appears once ``value`` is percent-, entity- or escape-decoded."""
        if not self._bounded:
            return False
        if "%" in value:
            decoded = unquote(value, errors="replace")
            if decoded != value and self.finds_text(decoded, loose=loose):
                return True
        return self._hidden_escapes(value, loose=loose)

    # --- bytes --------------------------------------------------------------------------------

    def scan_data(self, raw: bytes) -> tuple[bytes, bool]:
        """:meth:`scan` for bytes, through their Latin-1 view (one character per byte, so the
        forms, all ASCII, match the same bytes); packed forms are not touched."""
        text = raw.decode("latin-1")
        out, hidden = self.scan(text)
        return (raw if out is text else out.encode("latin-1")), hidden

    def data(self, raw: bytes) -> bytes:
        """``raw`` with every textual form replaced (the packed forms are not touched)."""
        return self.scan_data(raw)[0]

    def finds_data(self, raw: bytes, *, loose: bool = False) -> bool:
        return self.finds_text(raw.decode("latin-1"), loose=loose)

    def hidden_in_data(self, raw: bytes, *, wide: bool = False, loose: bool = False) -> bool:
        """Textual forms hidden in a blob: percent/entity/escape-encoded, or (``wide``, for
        small blobs such as certificates) as UTF-16. ``loose``: a form glued to other bytes
        counts too (in DER, a string's neighbours are tags and lengths, often digits)."""
        text = raw.decode("latin-1")
        if self.hidden_in_text(text, loose=loose):
            return True
        if not wide:
            return False
        for start in (0, 1):  # UTF-16 (a BMPString in a certificate), both alignments
            pairs = raw[start:]
            view = pairs[: len(pairs) // 2 * 2].decode("utf-16-be", errors="replace")
            if self.finds_text(view, loose=loose):
                return True
        return False

    def packed_in(self, raw: bytes) -> bool:
        """Whether ``raw`` holds an address as its raw 4 or 16 bytes."""
        return any(p in raw for p in self.packed)
