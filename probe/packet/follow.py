"""The follow-up of one web measurement: trace what its verdict asks for, embed the facts.

``probe packet`` runs it over measurement files; ``probe run --packet-level`` runs it on each
measurement right after its verdict (serialised: the test's rate limit is per target, and the
traces of concurrent follow-ups would add up). Without raw sockets the caller prints
:data:`probe.packet.privilege.NOTICE` once and never calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from probe.analysis.packet import analyze_packet
from probe.packet.measure import PacketContext, embed, measure_packet
from probe.packet.target import from_measurement


async def follow_up(
    web: Mapping[str, Any], *, ctx: PacketContext, extra_dns_servers: Sequence[str] = ()
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(``web`` with ``test_keys.x_packet`` when anything was traced, the ``censor_trace``
    measurements with their verdict keys). The web verdict is not recomputed here: the caller
    runs its analysis on the returned measurement, as for any other."""
    traced = []
    for target in from_measurement(web, extra_dns_servers=extra_dns_servers):
        msmt = await measure_packet(target, ctx=ctx)
        msmt["test_keys"].update(analyze_packet(msmt))
        traced.append(msmt)
    return embed(web, traced), traced
