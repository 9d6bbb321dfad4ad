"""Layers that can't be crossed, beyond what import-linter sees (`make lint` runs its contracts,
pyproject.toml [tool.importlinter]): only the two network seams open sockets or wrap TLS:
probe.net for every test, probe.packet.sockets for the packet-level test (raw sockets and
TTL-limited kernel sockets, which no in-memory network can stand in for)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "probe"
SEAM = PROBE / "net.py"
PACKET_SEAM = PROBE / "packet" / "sockets.py"
SEAMS = (SEAM, PACKET_SEAM)

#: attribute chains that reach a socket or a TLS session directly
_FORBIDDEN = {
    ("trio", "socket"),
    ("trio", "SSLStream"),
    ("trio", "open_tcp_stream"),
    ("trio", "open_ssl_over_tcp_stream"),
    ("socket", "socket"),
    ("socket", "create_connection"),
    ("socket", "getaddrinfo"),
    ("ssl", "wrap_socket"),
}


def direct_network_access(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in _FORBIDDEN:
                found.append((node.lineno, f"{node.value.id}.{node.attr}"))
        if isinstance(node, ast.Attribute) and node.attr == "wrap_socket":
            found.append((node.lineno, "wrap_socket"))
    return found


def test_only_the_seam_touches_sockets_and_tls_wrapping() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {what}"
        for path in sorted(PROBE.rglob("*.py"))
        if path not in SEAMS
        for line, what in direct_network_access(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "go through probe.net.Network:\n" + "\n".join(offenders)
    for seam in SEAMS:  # the scan sees the seams
        assert direct_network_access(seam.read_text(encoding="utf-8")), seam
