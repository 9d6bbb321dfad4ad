"""The probe's own addresses, found without sending any traffic.

:func:`local_addresses` reads the kernel's interface tables (``/proc/net/fib_trie`` for IPv4,
``/proc/net/if_inet6`` for IPv6) and falls back to ``ip -j addr`` where ``/proc`` is not there.
Loopback and unspecified addresses are left out (scrubbing ``127.0.0.1`` would destroy loopback
evidence and ``probe_ip`` itself). The public address behind a NAT is not known offline: the
session adds the one geolocation discovered (``probe.geo``).
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import orjson

from probe.privacy.forms import IPAddress

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
