"""Can this process run the packet-level test? Raw sockets (root or CAP_NET_RAW) and scapy.

:func:`unavailable` answers with the reason in a few words, or None. Callers print
:data:`NOTICE` once and carry on without the packet-level test: nothing else changes.
"""

from __future__ import annotations

import importlib.util

from probe.packet.sockets import raw_unavailable

NOTICE = "packet-level test skipped: {reason}; everything else runs as usual"


def unavailable() -> str | None:
    """Why the packet-level test cannot run here, or None when it can."""
    if importlib.util.find_spec("scapy") is None:
        return "it needs scapy (pip install 'censorprobe[privileged]')"
    return raw_unavailable()
