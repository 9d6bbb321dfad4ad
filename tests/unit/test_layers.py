"""Layers that can't be crossed, beyond what import-linter sees (`make lint` runs its contracts,
pyproject.toml [tool.importlinter]): only the network seam opens sockets or wraps TLS."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "probe"
SEAM = PROBE / "net.py"

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
        if path != SEAM
        for line, what in direct_network_access(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "go through probe.net.Network:\n" + "\n".join(offenders)
    assert direct_network_access(SEAM.read_text(encoding="utf-8"))  # the scan sees the seam
