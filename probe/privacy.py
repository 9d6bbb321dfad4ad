"""Scrubbing the volunteer's own IP addresses out of a measurement before it is written.

:func:`scrub_measurement` does what probe-cli's ``model.ScrubMeasurement`` does (every literal
occurrence of the probe's IPs becomes ``[scrubbed]``, anywhere: bodies, headers, error text, DNS
answers, dict keys such as ``"ip:port"``; then ``probe_ip`` is forced to ``127.0.0.1``), with
three differences:

* It walks the parsed JSON and rewrites every string (keys included) instead of replacing text
  in the serialised document, so a replacement can never land inside a JSON escape sequence. The
  result is the same document probe-cli would produce, and always valid JSON.
* BinaryData payloads (``{"format": "base64", "data": ...}``: non-UTF-8 bodies and headers, TLS
  certificates) are decoded, scrubbed as bytes, and re-encoded. ``raw_response`` (a base64 DNS
  reply) is decoded too; there the address is also searched in its *packed* form (4 or 16 bytes,
  as in an A/AAAA record) and replaced with zero bytes of the same length, so the DNS message
  stays parseable but no longer holds the address.
* Each address is matched in every textual form we know: IPv4 dotted quad (also inside
  ``::ffff:a.b.c.d``), IPv6 compressed, exploded and uncompressed-without-leading-zeros, in any
  letter case, and the reverse-DNS names (``d.c.b.a.in-addr.arpa``, ``....ip6.arpa``). A match
  must not be glued to a longer address (``1.2.3.4`` does not match in ``11.2.3.45``).

Strings ``unknown_failure: <text>`` additionally pass through :func:`probe.failures.scrub_ips`,
which removes *every* IP address from the free text, as probe-cli does.

:func:`local_addresses` finds the addresses to scrub without sending any traffic: it reads the
kernel's interface tables (``/proc/net/fib_trie`` for IPv4, ``/proc/net/if_inet6`` for IPv6) and
falls back to ``ip -j addr`` where ``/proc`` is not there. Loopback and unspecified addresses
are left out (scrubbing ``127.0.0.1`` would destroy loopback evidence and ``probe_ip`` itself).
The public address behind a NAT is not known offline; callers that learn it pass it in too.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import subprocess
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from probe.failures import scrub_ips

SCRUBBED = "[scrubbed]"
UNKNOWN_FAILURE_PREFIX = "unknown_failure"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _text_forms(addr: IPAddress) -> list[str]:
    forms = {str(addr), addr.reverse_pointer}
    if isinstance(addr, ipaddress.IPv6Address):
        forms.add(addr.exploded)
        forms.add(":".join(f"{int(group, 16):x}" for group in addr.exploded.split(":")))
    return sorted(forms, key=len, reverse=True)  # longest first in the alternation


def _parse(ips: Iterable[str]) -> list[IPAddress]:
    out: list[IPAddress] = []
    for raw in ips:
        text = raw.strip().strip("[]").split("%", 1)[0]
        if not text:
            continue
        try:
            addr = ipaddress.ip_address(text)
        except ValueError as exc:
            raise ValueError(f"not an IP address to scrub: {raw!r}") from exc
        if addr not in out:
            out.append(addr)
    return out


class IPScrubber:
    """Replaces a fixed set of addresses in text, bytes and whole JSON values."""

    def __init__(self, ips: Iterable[str]) -> None:
        self.addresses = _parse(ips)
        branches: list[str] = []
        for version, before, after in (
            # IPv4: not glued to digits or dots (":" may precede: "::ffff:a.b.c.d", "host:ip")
            (4, r"(?<![0-9.])", r"(?![0-9]|\.[0-9])"),
            # IPv6: not glued to hex digits, colons or dots (":" may follow: "ip:port")
            (6, r"(?<![0-9A-Fa-f:.])", r"(?![0-9A-Fa-f])"),
        ):
            forms = [f for a in self.addresses if a.version == version for f in _text_forms(a)]
            if forms:
                alternation = "|".join(re.escape(form) for form in forms)
                branches.append(f"{before}(?:{alternation}){after}")
        #: every textual form, lower-cased: a substring test over the JSON text is a superset
        #: of the real matches, so it is a safe pre-filter (an escape such as "\u001b" may glue
        #: a digit to an address in JSON text, which is why it has no boundaries)
        self._needles = tuple(
            sorted({f.lower() for a in self.addresses for f in _text_forms(a)}, key=len)
        )
        self._byte_needles = tuple(n.encode("ascii") for n in self._needles)
        if branches:
            pattern = "|".join(branches)
            self._text: re.Pattern[str] | None = re.compile(pattern, re.IGNORECASE)
            self._bytes: re.Pattern[bytes] | None = re.compile(
                pattern.encode("ascii"), re.IGNORECASE
            )
        else:
            self._text = self._bytes = None
        self._packed = [addr.packed for addr in self.addresses]

    def __bool__(self) -> bool:
        return bool(self.addresses)

    def finds(self, msmt: dict[str, Any]) -> bool:
        """Whether any form of an address occurs anywhere in ``msmt`` (text, keys, or a base64
        payload once decoded): one search over the JSON text instead of a walk."""
        if not self._needles:
            return False
        text = orjson.dumps(msmt)  # UTF-8; the needles are ASCII, bytes.lower() folds ASCII
        low = text.lower()
        if any(needle in low for needle in self._byte_needles):
            return True
        for match in _B64_IN_JSON.finditer(text):
            try:
                raw = base64.b64decode(match.group(1), validate=True)
            except (binascii.Error, ValueError):
                continue
            assert self._bytes is not None
            if self._bytes.search(raw) or any(p in raw for p in self._packed):
                return True
        return False

    def text(self, value: str) -> str:
        if value.startswith(UNKNOWN_FAILURE_PREFIX):
            value = scrub_ips(value)  # first, so that "ip:port" goes as a whole
        if self._text is not None:
            value = self._text.sub(SCRUBBED, value)
        return value

    def data(self, raw: bytes) -> bytes:
        if self._bytes is None:
            return raw
        return self._bytes.sub(SCRUBBED.encode("ascii"), raw)

    def dns_message(self, raw: bytes) -> bytes:
        """A DNS reply: textual forms (names) and packed A/AAAA data (zeroed, same length)."""
        for packed in self._packed:
            raw = raw.replace(packed, bytes(len(packed)))
        return self.data(raw)

    def value(self, value: Any, *, key: str | None = None) -> Any:
        """A scrubbed copy of any JSON value."""
        if isinstance(value, str):
            if key == "raw_response":
                return _rebase64(value, self.dns_message) or self.text(value)
            return self.text(value)
        if isinstance(value, dict):
            if _is_binary_data(value):
                scrubbed = _rebase64(value["data"], self.data)
                if scrubbed is not None:
                    return {**value, "data": scrubbed}
            return {self.text(k): self.value(v, key=k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


def _is_binary_data(value: dict[str, Any]) -> bool:
    return value.get("format") == "base64" and isinstance(value.get("data"), str)


def _rebase64(text: str, scrub: Callable[[bytes], bytes]) -> str | None:
    """Decode base64, scrub the bytes, re-encode; None if ``text`` is not base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    new = scrub(raw)
    return text if new == raw else base64.b64encode(new).decode("ascii")


def scrub_measurement(
    msmt: dict[str, Any], *, probe_ips: Iterable[str], include_ip: bool = False
) -> dict[str, Any]:
    """A copy of ``msmt`` with the probe's addresses scrubbed and ``probe_ip`` = 127.0.0.1.

    With ``include_ip`` the volunteer chose to publish the address: nothing is scrubbed
    (``unknown_failure`` texts are already scrubbed at classification time).
    """
    if include_ip:
        copy: dict[str, Any] = orjson.loads(orjson.dumps(msmt))
        return copy
    scrubber = _scrubber(tuple(probe_ips))
    if not scrubber.finds(msmt):
        # the common case: no address anywhere, so no copy-on-walk of every string
        return {**msmt, "probe_ip": "127.0.0.1"}
    out: dict[str, Any] = scrubber.value(msmt)
    out["probe_ip"] = "127.0.0.1"
    return out


@lru_cache(maxsize=8)
def _scrubber(ips: tuple[str, ...]) -> IPScrubber:
    """One compiled scrubber per set of addresses (a run scrubs thousands of measurements)."""
    return IPScrubber(ips)


#: base64 payloads inside the JSON text: BinaryData ``data`` and DNS ``raw_response``
_B64_IN_JSON = re.compile(rb'"(?:data|raw_response)":\s*"([A-Za-z0-9+/=]+)"')


# --- the probe's own addresses ----------------------------------------------------------------

FIB_TRIE = Path("/proc/net/fib_trie")
IF_INET6 = Path("/proc/net/if_inet6")


def _keep(addr: IPAddress) -> bool:
    return not (addr.is_loopback or addr.is_unspecified)


def parse_fib_trie(text: str) -> list[str]:
    """IPv4 addresses of the local interfaces: the ``/32 host LOCAL`` leaves of the trie."""
    out: list[str] = []
    last: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif last is not None and stripped.startswith("/32") and stripped.endswith("host LOCAL"):
            try:
                addr = ipaddress.IPv4Address(last)
            except ValueError:
                continue
            if _keep(addr) and str(addr) not in out:
                out.append(str(addr))
    return out


def parse_if_inet6(text: str) -> list[str]:
    """IPv6 addresses of the local interfaces (32 hex digits in the first column)."""
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or len(fields[0]) != 32:
            continue
        try:
            addr = ipaddress.IPv6Address(int(fields[0], 16))
        except ValueError:
            continue
        if _keep(addr) and str(addr) not in out:
            out.append(str(addr))
    return out


def parse_ip_json(text: str) -> list[str]:
    """Addresses from ``ip -j addr`` output."""
    out: list[str] = []
    for link in orjson.loads(text):
        for info in link.get("addr_info", []):
            try:
                addr = ipaddress.ip_address(str(info.get("local", "")).split("%", 1)[0])
            except ValueError:
                continue
            if _keep(addr) and str(addr) not in out:
                out.append(str(addr))
    return out


def local_addresses(*, fib_trie: Path = FIB_TRIE, if_inet6: Path = IF_INET6) -> list[str]:
    """Every non-loopback address of this host's interfaces (v4 then v6). Sends no traffic."""
    found: list[str] = []
    have_proc = False
    if fib_trie.exists():
        found += parse_fib_trie(fib_trie.read_text())
        have_proc = True
    if if_inet6.exists():
        found += parse_if_inet6(if_inet6.read_text())
        have_proc = True
    if not have_proc:
        try:
            proc = subprocess.run(
                ["ip", "-j", "addr"], capture_output=True, text=True, timeout=5, check=True
            )
            found = parse_ip_json(proc.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            found = []
    return list(dict.fromkeys(found))
