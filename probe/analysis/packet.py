"""Packet-level facts -> where the censor sits and which packets it forged (pure, total).

Input: the ``iterative_trace`` of a ``censor_trace`` measurement (:mod:`probe.packet.measure`),
or of a web measurement's ``test_keys.x_packet``. For each traced address it compares the
target trace (the real SNI/Host/name) with the control trace (an innocuous one), TTL by TTL:

- **path length** L: the first TTL at which the control drew a packet from the peer's address;
- **censor's hop** N: the first TTL at which the target trace draws a *blocking reaction* the
  control did not: a packet from the peer's address before the path's end (the trigger could
  not have reached the peer), or at/after it a RST/FIN the control did not get, a packet whose IP
  TTL differs from the connection's SYN-ACK, more DNS answers than the control's; or silence
  where the control drew a reply, lasting to the end of the trace (a drop). A reaction first
  seen with TTL N comes from a device between hop N-1 and hop N;
- **interception**: when both triggers drew the same answers but the traced port's connection
  ends closer than the address's other web port answers from (``other_port``, compared by the
  hop each SYN-ACK/RST left from), a transparent proxy or TLS interceptor answered for the
  server: reaction ``interception`` at the traced path's end;
- **placement**: ``on-path`` when the trigger went on past the censor (an ICMP time exceeded or a
  second, genuine answer came back with the reaction), else ``in-path``;
- **status**: ``found``; ``server`` (the reaction starts where the server is and no packet shows
  injection: the server itself, or a censor on its last link that mimics it); ``none`` (the
  same reactions as the control); ``no-connection`` (no control probe connected);
  ``incomplete`` (no target probe ran).

Injection evidence, per reaction packet from the censor's hop on (``x_injection``), against the
connection's own SYN-ACK (TCP) or the resolver's genuine answer to the control (DNS):
``before_path`` (it came back for a trigger that could not reach the peer), the IP TTL (and the
hop it suggests, from the usual initial TTLs 32/64/128/255), an IP ID out of the sequence of the
peer's own packets in that connection, TCP timestamps present in one and not the other, and two
DNS answers to one query that differ. Any of them makes ``injected`` true.

References (``x_evidence``) point into the measurement: ``iterative_trace[0].target_trace.
iterations[1].replies[0]``; under a web measurement they start with ``x_packet.``.
:func:`with_packet_facts` is the web verdict's hook: without ``x_packet`` it returns the verdict
object it was given, untouched.

The ``censor_trace`` measurement's own verdict (:func:`analyze_packet`, registered in
:mod:`probe.registry`) is the first rule of :data:`PACKET_RULES` (data: stable ids, one
``packet/...`` outcome each, read from the traced addresses' statuses) that matches;
:func:`packet_verdict` reads it back into the run summary's and the batch's
:class:`~probe.summary.Verdict`. :func:`observations` is what the rules read, TTL by TTL (the
goldens' observation tier).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe.analysis.values import as_dict, as_int, as_list, as_str
from probe.summary import Verdict
from probe.vocabulary import Outcome

#: 2026.12.2: the censor_trace verdict (x_outcome, x_rule_id: PACKET_RULES) added
PACKET_ANALYSIS_VERSION = "2026.12.2"

#: x_censors[].status: what one traced address shows (docs/packet.md, "What the analysis
#: concludes")
FOUND, SERVER, NONE, NO_CONNECTION, INCOMPLETE, ANALYSIS_ERROR = (
    "found", "server", "none", "no-connection", "incomplete", "analysis-error",
)  # fmt: skip

#: the keys the web verdict gains when the measurement has packet-level facts
PACKET_KEYS = ("x_censor_hop", "x_censors", "x_injection", "x_packet_analysis_version")

_INITIAL_TTLS = (32, 64, 128, 255)
#: how far an IP ID may sit from the peer's own IDs in one connection and still be its
_IP_ID_SLACK = 64


class _Reply:
    __slots__ = ("ref", "facts", "peer")

    def __init__(self, ref: str, facts: dict[str, Any], peer: bool) -> None:
        self.ref = ref
        self.facts = facts
        self.peer = peer

    @property
    def kind(self) -> str:
        return as_str(self.facts.get("kind")) or ""

    @property
    def flags(self) -> str:
        return as_str(self.facts.get("tcp_flags")) or ""

    @property
    def ip_ttl(self) -> int | None:
        return as_int(self.facts.get("ip_ttl"))

    @property
    def pure_ack(self) -> bool:
        return self.kind == "tcp" and self.flags == "A" and not self.facts.get("payload_length")

    @property
    def time_exceeded(self) -> bool:
        return self.kind == "icmp" and as_int(self.facts.get("icmp_type")) == 11


class _Iteration:
    __slots__ = ("ttl", "ref", "failure", "replies", "syn_ack", "syn_ack_ref")

    def __init__(self, raw: dict[str, Any], ref: str, peer: str) -> None:
        self.ttl = as_int(raw.get("ttl")) or 0
        self.ref = ref
        self.failure = as_str(raw.get("failure"))
        self.replies: list[_Reply] = []
        for i, item in enumerate(as_list(raw.get("replies"))):
            facts = as_dict(item)
            kind = as_str(facts.get("kind"))
            from_peer = kind in ("tcp", "udp") and as_str(facts.get("src")) == peer
            self.replies.append(_Reply(f"{ref}.replies[{i}]", facts, from_peer))
        handshake = as_dict(raw.get("handshake"))
        syn_ack = handshake.get("syn_ack")
        self.syn_ack = as_dict(syn_ack) if isinstance(syn_ack, Mapping) else None
        self.syn_ack_ref = f"{ref}.handshake.syn_ack" if self.syn_ack is not None else None

    @property
    def peer_replies(self) -> list[_Reply]:
        return [r for r in self.replies if r.peer]

    @property
    def suspects(self) -> list[_Reply]:
        """Packets from the peer's address other than pure ACKs, in arrival order."""
        return [r for r in self.replies if r.peer and not r.pure_ack]

    @property
    def silent(self) -> bool:
        return self.failure is None and not self.replies

    @property
    def connected(self) -> bool:
        return self.failure is None


def _iterations(trace: object, ref: str, peer: str) -> dict[int, _Iteration]:
    out: dict[int, _Iteration] = {}
    for i, item in enumerate(as_list(as_dict(trace).get("iterations"))):
        it = _Iteration(as_dict(item), f"{ref}.iterations[{i}]", peer)
        if it.ttl > 0 and it.ttl not in out:
            out[it.ttl] = it
    return out


def _peer_of(address: str) -> str:
    host, sep, port = address.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else address


@dataclass(frozen=True, slots=True)
class PacketRule:
    """One row of the ``censor_trace`` verdict: ``when`` reads the traced addresses'
    statuses (one per ``x_censors`` entry, in trace order)."""

    rule_id: str
    outcome: Outcome
    when: Callable[[Sequence[str]], bool]
    comment: str


#: first match wins; the last always matches
PACKET_RULES: tuple[PacketRule, ...] = (
    PacketRule(
        "packet.not_traced",
        Outcome.PACKET_NOT_TRACED,
        lambda statuses: not statuses,
        "nothing was traced: the address is special-purpose (x_skipped, never contacted)",
    ),
    PacketRule(
        "packet.censor_located",
        Outcome.PACKET_CENSOR_LOCATED,
        lambda statuses: FOUND in statuses,
        "a blocking reaction the innocuous trigger did not draw, before the server or forged: "
        "x_censor_hop is where it starts",
    ),
    PacketRule(
        "packet.server_reaction",
        Outcome.PACKET_SERVER_REACTION,
        lambda statuses: SERVER in statuses,
        "the reaction starts where the server is and no packet looks forged: the server itself "
        "(or a filter on its own link), not a censor on the path",
    ),
    PacketRule(
        "packet.incomplete",
        Outcome.PACKET_INCOMPLETE,
        lambda statuses: INCOMPLETE in statuses,
        "the control trace ran, the target trace did not (the packet cap): nothing to compare",
    ),
    PacketRule(
        "packet.no_connection",
        Outcome.PACKET_NO_CONNECTION,
        lambda statuses: all(s == NO_CONNECTION for s in statuses),
        "no control probe connected: the server is unreachable, there is no path to compare",
    ),
    PacketRule(
        "packet.no_censor",
        Outcome.PACKET_NO_CENSOR,
        lambda statuses: True,
        "the real trigger drew the same reactions as the innocuous one, TTL by TTL",
    ),
)


def analyze_packet(
    measurement: Mapping[str, Any],
    *,
    fingerprints: object = None,
    public_ranges: Sequence[object] = (),
) -> dict[str, Any]:
    """The verdict keys of one ``censor_trace`` measurement, ``x_evidence`` included (pure,
    total). The registry's analyze signature; neither fingerprints nor ranges are needed (which
    router addresses could be published was decided when measuring)."""
    keys, refs = analyze_facts(as_dict(measurement.get("test_keys")), prefix="")
    statuses = [as_str(c.get("status")) or "" for c in keys["x_censors"]]
    if ANALYSIS_ERROR in statuses:
        outcome, rule_id = Outcome.UNKNOWN_ANALYSIS_ERROR, "packet.internal_error"
    else:
        rule = next(r for r in PACKET_RULES if r.when(statuses))
        outcome, rule_id = rule.outcome, rule.rule_id
    keys["x_outcome"] = outcome.value
    keys["x_rule_id"] = rule_id
    keys["x_rules_version"] = PACKET_ANALYSIS_VERSION
    keys["x_evidence"] = refs
    return keys


_LABELS: Mapping[str, str] = {
    Outcome.PACKET_SERVER_REACTION.value: "server reaction",
    Outcome.PACKET_NO_CENSOR.value: "no censor",
    Outcome.PACKET_NO_CONNECTION.value: "no connection",
    Outcome.PACKET_INCOMPLETE.value: "incomplete",
    Outcome.PACKET_NOT_TRACED.value: "not traced",
}


def packet_verdict(keys: Mapping[str, Any]) -> Verdict:
    """The short form of :func:`analyze_packet`'s keys (the summary line, the batch columns):
    no ``blocking`` of its own (the web measurement says what was blocked), ``anomaly`` when a
    censor was located, the label names its hop."""
    outcome = as_str(keys.get("x_outcome"))
    hop = as_int(keys.get("x_censor_hop"))
    if outcome == Outcome.PACKET_CENSOR_LOCATED.value:
        label = f"censor at hop {hop}" if hop else "censor located"
        anomaly: bool | None = True
    else:
        label = _LABELS.get(outcome or "", "undetermined")
        no_censor = (Outcome.PACKET_NO_CENSOR.value, Outcome.PACKET_SERVER_REACTION.value)
        anomaly = False if outcome in no_censor else None
    return Verdict(
        blocking=None,
        accessible=None,
        anomaly=anomaly,
        outcome=outcome,
        rule_id=as_str(keys.get("x_rule_id")),
        rules_version=as_str(keys.get("x_rules_version")),
        fingerprint_id=None,
        label=label,
    )


def observations(measurement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the analysis reads, one row per traced address, role and TTL (pure): a
    ``censor_trace`` measurement's ``iterative_trace``, or a web measurement's ``x_packet``."""
    tk = as_dict(measurement.get("test_keys"))
    facts = as_dict(tk.get("x_packet")) if "x_packet" in tk else tk
    rows: list[dict[str, Any]] = []
    for i, entry in enumerate(as_list(facts.get("iterative_trace"))):
        entry = as_dict(entry)
        peer = _peer_of(as_str(entry.get("address")) or "")
        for role in ("control", "target"):
            ref = f"iterative_trace[{i}].{role}_trace"
            for ttl, it in sorted(_iterations(entry.get(f"{role}_trace"), ref, peer).items()):
                rows.append(
                    {
                        "trace": i,
                        "role": role,
                        "ttl": ttl,
                        "failure": it.failure,
                        "silent": it.silent,
                        "syn_ack_ip_ttl": as_int(it.syn_ack.get("ip_ttl")) if it.syn_ack else None,
                        "replies": [
                            {
                                "kind": r.kind,
                                "peer": r.peer,
                                "flags": r.flags,
                                "ip_ttl": r.ip_ttl,
                                "time_exceeded": r.time_exceeded,
                                "payload_length": as_int(r.facts.get("payload_length")),
                            }
                            for r in it.replies
                        ],
                    }
                )
    return rows


def with_packet_facts(measurement: Mapping[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """The web verdict, plus the packet-level keys when ``test_keys.x_packet`` exists.

    Without packet-level facts ``verdict`` itself is returned: not a copy, not a key added.
    """
    tk = measurement.get("test_keys")
    facts = tk.get("x_packet") if isinstance(tk, Mapping) else None
    if not isinstance(facts, Mapping):
        return verdict
    keys, refs = analyze_facts(as_dict(facts), prefix="x_packet.")
    out = dict(verdict)
    out.update(keys)
    evidence = [e for e in as_list(verdict.get("x_evidence")) if isinstance(e, str)]
    out["x_evidence"] = list(dict.fromkeys([*evidence, *refs]))
    return out


def analyze_facts(facts: dict[str, Any], *, prefix: str) -> tuple[dict[str, Any], list[str]]:
    """(the packet-level keys, the evidence references) for a dict holding ``iterative_trace``."""
    censors: list[dict[str, Any]] = []
    injection: list[dict[str, Any]] = []
    refs: list[str] = []
    try:
        for i, entry in enumerate(as_list(facts.get("iterative_trace"))):
            censor, checks, used = _locate(as_dict(entry), f"{prefix}iterative_trace[{i}]")
            censors.append(censor)
            injection.extend(checks)
            refs.extend(used)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        censors.append({"status": ANALYSIS_ERROR, "error": type(exc).__name__})
    hops = [c["hop"] for c in censors if c.get("status") == FOUND and c.get("hop")]
    keys = {
        "x_censor_hop": min(hops) if hops else None,
        "x_censors": censors,
        "x_injection": injection,
        "x_packet_analysis_version": PACKET_ANALYSIS_VERSION,
    }
    return keys, list(dict.fromkeys(refs))


def _locate(
    entry: dict[str, Any], ref: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    address = as_str(entry.get("address")) or ""
    peer = _peer_of(address)
    stage = as_str(entry.get("stage")) or ""
    control = _iterations(entry.get("control_trace"), f"{ref}.control_trace", peer)
    target = _iterations(entry.get("target_trace"), f"{ref}.target_trace", peer)
    censor: dict[str, Any] = {
        "trace": ref,
        "stage": stage,
        "address": address,
        "status": NONE,
        "hop": None,
        "reaction": None,
        "placement": None,
        "path_length": None,
        "previous_hop": None,
        "hop_router": None,
    }
    if not any(it.connected for it in control.values()):
        censor["status"] = NO_CONNECTION
        return censor, [], []
    path = min((t for t, it in control.items() if it.peer_replies), default=None)
    censor["path_length"] = path
    if not target:
        censor["status"] = INCOMPLETE
        return censor, [], []
    hop = _reaction_ttl(control, target, path)
    if hop is None:
        return _interception(censor, entry, control, path, ref)
    at = target[hop]
    checks = [
        _checks(it, r, path=path, control=control)
        for t, it in sorted(target.items())
        if t >= hop
        for r in it.suspects
    ]
    injected = any(c["injected"] for c in checks)
    before_path = path is None or hop < path
    censor.update(
        status=FOUND if before_path or injected else SERVER,
        hop=hop,
        reaction=_reaction_kind(at, stage),
        placement=_placement(at),
        previous_hop=_router(control, target, hop - 1),
        hop_router=_router(control, target, hop, silent=None),
    )
    refs = [r.ref for r in at.suspects] or [at.ref]
    expected = control.get(hop)
    if expected is not None and expected.replies:
        refs.append(expected.replies[0].ref)  # what the innocuous trigger drew at that TTL
    previous = censor["previous_hop"]
    if previous is not None:
        refs.append(previous["ref"])
    refs.extend(c["packet"] for c in checks if c["injected"])
    return censor, checks, refs


def _interception(
    censor: dict[str, Any],
    entry: dict[str, Any],
    control: dict[int, _Iteration],
    path: int | None,
    ref: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Both triggers drew the same answers, but does the port's connection end where the address
    is? A transparent proxy (or a TLS interceptor) answers the handshake itself: the traced
    port's path ends at its hop, while the address's other web port answers from farther
    (``other_port``: its SYN-ACK or RST). Then the interceptor sits at the traced path's end."""
    it = control.get(path) if path is not None else None
    answer = as_dict(as_dict(entry.get("other_port")).get("answer"))
    here = as_int(it.syn_ack.get("ip_ttl")) if it is not None and it.syn_ack else None
    there = as_int(answer.get("ip_ttl"))
    if it is None or path is None or here is None or there is None:
        return censor, [], []
    near, far = origin_hop(here), origin_hop(there)
    if near is None or far is None or far <= path:
        return censor, [], []
    check = {
        "packet": it.syn_ack_ref,
        "reference": f"{ref}.other_port.answer",
        "ttl": path,
        "before_path": False,
        "ip_ttl": [here, there],
        "ip_ttl_mismatch": here != there,
        "origin_hop": near,
        "other_port_origin_hop": far,
        "ip_id_out_of_sequence": None,
        "tcp_options_mismatch": None,
        "dns_answers_differ": None,
        "dns_first_of_differing": None,
        "injected": True,
    }
    censor.update(
        status=FOUND,
        hop=path,
        reaction="interception",
        placement="in-path",
        previous_hop=_router(control, {}, path - 1),
        hop_router=None,
    )
    refs = [it.syn_ack_ref or it.ref, f"{ref}.other_port.answer"]
    previous = censor["previous_hop"]
    if previous is not None and previous["ref"] is not None:
        refs.append(previous["ref"])
    return censor, [check], refs


def _reaction_ttl(
    control: dict[int, _Iteration], target: dict[int, _Iteration], path: int | None
) -> int | None:
    ttls = sorted(target)
    for n, ttl in enumerate(ttls):
        it = target[ttl]
        if not it.connected:
            continue
        c = control.get(ttl)
        if c is None and path is not None and ttl > path:
            c = control.get(path)  # beyond the control's last TTL: the path's end looks the same
        if it.suspects:
            if path is None or ttl < path or _differs_at_end(it, c):
                return ttl
            continue
        if it.silent and c is not None and not c.silent:
            later = [target[t] for t in ttls[n + 1 :] if target[t].connected]
            if all(x.silent for x in later):
                return ttl
    return None


def _differs_at_end(it: _Iteration, control: _Iteration | None) -> bool:
    """At or past the path's end, does the target's answer differ from the control's?"""
    ours = it.suspects
    theirs = control.suspects if control is not None else []
    if any("R" in r.flags for r in ours) and not any("R" in r.flags for r in theirs):
        return True
    if any("F" in r.flags for r in ours) and not any("F" in r.flags for r in theirs):
        return True
    reference = as_int(it.syn_ack.get("ip_ttl")) if it.syn_ack is not None else None
    if reference is not None and any(r.ip_ttl not in (None, reference) for r in ours):
        return True
    udp = [r for r in ours if r.kind == "udp"]
    return len(udp) > max(1, len([r for r in theirs if r.kind == "udp"]))


def _reaction_kind(it: _Iteration, stage: str) -> str:
    suspects = it.suspects
    if not suspects:
        return "drop"
    first = suspects[0]
    if first.kind == "udp":
        return "dns-answer"
    if "R" in first.flags:
        return "rst"
    if as_int(first.facts.get("payload_length")):
        return "response"
    return "fin" if "F" in first.flags else "other"


def _placement(it: _Iteration) -> str:
    if not it.suspects:
        return "in-path"
    if any(r.time_exceeded for r in it.replies) or len(it.suspects) > 1:
        return "on-path"
    return "in-path"


_NO_REPLY: dict[str, Any] = {"src_withheld": "no-reply"}


def _router(
    control: dict[int, _Iteration],
    target: dict[int, _Iteration],
    ttl: int,
    *,
    silent: dict[str, Any] | None = _NO_REPLY,
) -> dict[str, Any] | None:
    """The router that answered TTL ``ttl`` with time exceeded (its published facts and the
    reference); when none did, ``silent`` (None, or a record saying "no-reply")."""
    if ttl < 1:
        return None
    for trace in (control, target):
        it = trace.get(ttl)
        if it is None:
            continue
        for r in it.replies:
            if r.time_exceeded:
                return {
                    "hop": ttl,
                    "src": r.facts.get("src"),
                    "src_asn": r.facts.get("src_asn"),
                    "src_as_org": r.facts.get("src_as_org"),
                    "src_withheld": r.facts.get("src_withheld"),
                    "ref": r.ref,
                }
    if silent is None:
        return None
    return {"hop": ttl, "src": None, "src_asn": None, "src_as_org": None, "ref": None, **silent}


def origin_hop(ip_ttl: int) -> int | None:
    """The hop a packet left from, if its sender used a usual initial TTL (32/64/128/255)."""
    for initial in _INITIAL_TTLS:
        if ip_ttl <= initial:
            return initial - ip_ttl + 1
    return None


def _checks(
    it: _Iteration, r: _Reply, *, path: int | None, control: dict[int, _Iteration]
) -> dict[str, Any]:
    observed = r.ip_ttl
    reference_ref: str | None
    if r.kind == "udp":
        genuine = _genuine_answer(control, path)
        reference = genuine.ip_ttl if genuine is not None else None
        reference_ref = genuine.ref if genuine is not None else None
    else:
        reference = as_int(it.syn_ack.get("ip_ttl")) if it.syn_ack is not None else None
        reference_ref = it.syn_ack_ref
    before_path = path is None or it.ttl < path
    ttl_mismatch = observed is not None and reference is not None and observed != reference
    ip_id = _ip_id_out_of_sequence(it, r) if r.kind == "tcp" else None
    options = _options_mismatch(it, r) if r.kind == "tcp" else None
    answers = _answers_differ(it) if r.kind == "udp" else None
    # two different answers to one query: the IP TTL tells which is forged when it differs
    # for any of them; when it cannot (injector and resolver at the same distance), the
    # first to arrive is (an on-path injector wins the race, or it would not inject)
    raced = False
    if answers:
        answers_ttl = [x.ip_ttl for x in it.suspects if x.kind == "udp"]
        if reference is None or all(t == reference for t in answers_ttl):
            raced = next(x for x in it.suspects if x.kind == "udp") is r
    return {
        "packet": r.ref,
        "reference": reference_ref,
        "ttl": it.ttl,
        "before_path": before_path,
        "ip_ttl": [observed, reference],
        "ip_ttl_mismatch": ttl_mismatch,
        "origin_hop": origin_hop(observed) if observed is not None else None,
        "ip_id_out_of_sequence": ip_id,
        "tcp_options_mismatch": options,
        "dns_answers_differ": answers,
        "dns_first_of_differing": raced if answers else None,
        "injected": bool(before_path or ttl_mismatch or ip_id or options or raced),
    }


def _genuine_answer(control: dict[int, _Iteration], path: int | None) -> _Reply | None:
    it = control.get(path) if path is not None else None
    if it is None:
        return None
    return next((r for r in it.suspects if r.kind == "udp"), None)


def _ip_id_out_of_sequence(it: _Iteration, r: _Reply) -> bool | None:
    """True when the peer's own packets in this connection (same IP TTL as its SYN-ACK, a
    non-zero IP ID) count IDs far from this packet's; None when there is nothing to compare."""
    reference = as_int(it.syn_ack.get("ip_ttl")) if it.syn_ack is not None else None
    ident = as_int(r.facts.get("ip_id"))
    if reference is None or ident is None:
        return None
    own = [
        as_int(x.facts.get("ip_id"))
        for x in it.peer_replies
        if x is not r and x.ip_ttl == reference and as_int(x.facts.get("ip_id"))
    ]
    ids = [i for i in own if i is not None]
    if not ids:
        return None
    return min(min((ident - i) % 65536, (i - ident) % 65536) for i in ids) > _IP_ID_SLACK


def _has_timestamps(options: object) -> bool:
    return any(as_list(o)[:1] == ["Timestamp"] for o in as_list(options))


def _options_mismatch(it: _Iteration, r: _Reply) -> bool | None:
    """TCP timestamps negotiated in the SYN-ACK but missing here (or the reverse); None for a
    RST (stacks send RSTs without options) or without a SYN-ACK."""
    if "R" in r.flags or it.syn_ack is None:
        return None
    return _has_timestamps(it.syn_ack.get("tcp_options")) != _has_timestamps(
        r.facts.get("tcp_options")
    )


def _answers_differ(it: _Iteration) -> bool:
    """Two answers to one query (same DNS id) with different addresses or IP TTLs."""
    seen: dict[int, set[tuple[Any, ...]]] = {}
    for r in it.suspects:
        if r.kind != "udp":
            continue
        dns = as_dict(r.facts.get("dns"))
        ident = as_int(dns.get("id"))
        if ident is None:
            continue
        answers = tuple(a for a in as_list(dns.get("answers")) if isinstance(a, str))
        seen.setdefault(ident, set()).add((answers, r.ip_ttl))
    return any(len(v) > 1 for v in seen.values())
