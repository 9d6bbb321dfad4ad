"""The ``censor_trace`` test's fixed parts: limits, innocuous names (docs/packet.md).

The limits are part of the test's specification (they bound what one target costs the volunteer
and the network); timeouts live in :class:`probe.config.Timeouts` with every other timeout; the
test's name and version in its registry entry (:mod:`probe.registry`), with every other test's.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the SNI / Host / DNS name of the control traces: a name no censor is known to block
CONTROL_SERVER_NAME = "example.org"
CONTROL_DNS_NAME = "example.com"


@dataclass(frozen=True, slots=True)
class PacketLimits:
    """What one target may cost (docs/packet.md, "Bounded and polite")."""

    #: the highest IP TTL a trace tries
    max_ttl: int = 32
    #: consecutive silent TTLs that end the control trace (and, where the control had replies,
    #: end the target trace's search for the end of a drop)
    gap_limit: int = 3
    #: every packet sent for one target: SYNs, ACKs, triggers, kernel retransmissions, RSTs,
    #: DNS queries; a trace stops before a probe that could exceed it
    max_packets: int = 300
    #: TTL-limited probes started per second, at most (each is one connection or one query)
    probes_per_second: float = 5.0

    def as_json(self) -> dict[str, int | float]:
        return {
            "max_ttl": self.max_ttl,
            "gap_limit": self.gap_limit,
            "max_packets": self.max_packets,
            "probes_per_second": self.probes_per_second,
        }


#: the most packets one TCP probe can send: SYN and its retransmissions within the connect
#: timeout (4), the handshake's ACK, the trigger and its retransmissions (3), the final RST
TCP_PROBE_WORST_CASE = 10
#: one DNS probe is one query
DNS_PROBE_WORST_CASE = 1
