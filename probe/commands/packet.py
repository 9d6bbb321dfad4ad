"""`probe packet`: locate the censor of blocked targets with TTL-limited probes (root).

Reads web measurements (``probe run`` output), follows up every one whose verdict is blocked at
the TLS, HTTP or DNS stage (docs/packet.md), and writes one ``censor_trace`` measurement per
traced address. ``--input URL --stage S --address IP`` traces one target given by hand.
``--web-output`` rewrites the input web measurements with their follow-ups' facts under
``test_keys.x_packet`` and the verdict recomputed (the others are copied unchanged).

Without raw sockets (root or CAP_NET_RAW) or scapy it prints one line saying so, sends nothing,
and copies ``--web-output`` unchanged.

Every measurement goes through a :class:`probe.session.Session` of the ``censor_trace`` report
(its report id; ``finish``: the registry's analysis, then scrubbing), as ``probe run`` writes
its own. :func:`open_run_follow_ups` wires the same follow-up into ``probe run --packet-level``
(the session's follow-up hook, :class:`probe.packet.follow.RunFollowUps`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe import inputs
from probe.commands.argtypes import argtype, count_arg, seconds_arg

HELP = "locate the censor of blocked targets with TTL-limited probes (root; docs/packet.md)"

#: the most packets per target the command accepts (the spec's default is 300)
MAX_PACKETS = 10_000

_rate = argtype(lambda text: inputs.number(text, name="value", minimum=0.01, maximum=50.0), "rate")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "measurements",
        nargs="*",
        type=Path,
        metavar="FILE.jsonl",
        help="web measurements (probe run output); the blocked ones are followed up",
    )
    one = parser.add_argument_group("one target given by hand")
    one.add_argument("--input", "-i", metavar="URL", help="the URL whose trigger is traced")
    one.add_argument(
        "--stage",
        choices=("tls", "http", "dns"),
        help="tls: ClientHello with the URL's host as SNI; http: request with it as Host; "
        "dns: A query for it (default: tls for https, http for http)",
    )
    one.add_argument(
        "--address",
        metavar="IP[:PORT]",
        help="the server (tls, http) or the resolver (dns) the trigger goes to",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE.jsonl",
        help="censor_trace measurements (default results/<date>/<report_id>.jsonl)",
    )
    out.add_argument(
        "--web-output",
        type=Path,
        metavar="FILE.jsonl",
        help="the input web measurements, follow-up facts embedded (test_keys.x_packet) and "
        "verdict recomputed",
    )
    net = parser.add_argument_group("network")
    net.add_argument(
        "--dns-server",
        action="append",
        default=[],
        metavar="IP:PORT",
        help="also trace DNS injection towards this resolver (repeatable)",
    )
    net.add_argument(
        "--public-ranges",
        metavar="CIDR,...",
        help="treat these special-purpose ranges as public addresses (lab only)",
    )
    net.add_argument(
        "--asn-db",
        type=Path,
        metavar="PATH",
        help="ASN database (.mmdb) for the routers on the path (default: data dir); without "
        "one no router address is published",
    )
    limits = parser.add_argument_group("limits (docs/packet.md)")
    limits.add_argument(
        "--max-ttl", type=count_arg(1, 255), metavar="N", help="highest TTL tried (32)"
    )
    limits.add_argument(
        "--max-packets",
        type=count_arg(1, MAX_PACKETS),
        metavar="N",
        help="packets per target (300)",
    )
    limits.add_argument(
        "--rate", type=_rate, metavar="N", help="probes started per second (5; 0.01 to 50)"
    )
    t = parser.add_argument_group("timeouts (seconds)")
    t.add_argument("--timeout-connect", type=seconds_arg(), metavar="S", help="TCP connect")
    t.add_argument(
        "--timeout-reply", type=seconds_arg(), metavar="S", help="first reply to a probe"
    )
    who = parser.add_argument_group("identity and privacy")
    who.add_argument(
        "--probe-asn",
        metavar="ASN",
        help="your network's ASN (default: the web measurements'); its routers are never published",
    )
    who.add_argument("--probe-cc", metavar="CC", help="your country code")
    who.add_argument("--no-include-asn", action="store_true", help="withhold the ASN (AS0)")
    who.add_argument("--no-include-cc", action="store_true", help="withhold the country (ZZ)")
    parser.set_defaults(func=run)


class UsageError(Exception):
    """A bad option: one line, exit 2, before anything is sent."""


@dataclass(frozen=True, slots=True)
class Plan:
    config: Any  # probe.config.Config
    limits: Any  # probe.packet.spec.PacketLimits
    #: ``--input``: the one target given by hand
    manual: Any  # probe.packet.target.PacketTarget | None
    #: the input lines, each with its measurement (None: not a JSON object, copied as it is)
    web: list[tuple[str, dict[str, Any] | None]]


def _fail(message: str) -> int:
    print(f"probe packet: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
    except UsageError as exc:
        return _fail(str(exc))
    from probe.packet.privilege import NOTICE, unavailable

    reason = unavailable()
    if reason is not None:
        print(f"probe packet: {NOTICE.format(reason=reason)}", file=sys.stderr)
        if args.web_output is not None:
            _write_lines(args.web_output, [line for line, _ in plan.web])
        return 0
    return _execute(plan, args)


def _plan(args: argparse.Namespace) -> Plan:
    import json
    from dataclasses import replace

    from probe.config import Config, Privacy, Timeouts, parse_ranges
    from probe.packet.spec import PacketLimits
    from probe.packet.target import PacketTarget, manual

    if not args.measurements and not args.input:
        raise UsageError("give web measurement files, or --input URL --address IP")
    if args.input and args.measurements:
        raise UsageError("give either measurement files or --input, not both")
    try:
        ranges = parse_ranges(args.public_ranges or "")
    except ValueError as exc:
        raise UsageError(f"--public-ranges: {exc}") from exc
    for server in args.dns_server:
        if server.count(":") != 1 or not server.rsplit(":", 1)[1].isdigit():
            raise UsageError(f"--dns-server must be IP:PORT, got {server!r}")
    limits = PacketLimits()
    for name, value in (
        ("max_ttl", args.max_ttl),
        ("max_packets", args.max_packets),
        ("probes_per_second", args.rate),
    ):
        if value is not None:  # the argparse types checked the ranges
            limits = replace(limits, **{name: value})
    timeouts = Timeouts()
    for name, value in (("connect", args.timeout_connect), ("packet_reply", args.timeout_reply)):
        if value is not None:
            timeouts = replace(timeouts, **{name: value})
    try:
        for path, what in ((args.output, "--output"), (args.web_output, "--web-output")):
            if path is not None:
                inputs.output_file(path, what=what)
        if args.asn_db is not None:
            _check_asn_db(inputs.readable_file(args.asn_db, what="ASN database"))
        for path in args.measurements:
            inputs.check_text_file(path, what="web measurements")
        if args.input:
            inputs.target_url(args.input)
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc

    web: list[tuple[str, dict[str, Any] | None]] = []
    manual_target: PacketTarget | None = None
    asn = cc = None
    if args.input:
        stage = args.stage or ("tls" if args.input.startswith("https:") else "http")
        if not args.address:
            raise UsageError("--input needs --address")
        try:
            manual_target = manual(args.input, stage=stage, address=args.address)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    for path in args.measurements:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        for line in lines:
            try:
                msmt = json.loads(line)
            except ValueError:
                msmt = None
            if not isinstance(msmt, dict):
                web.append((line, None))
                continue
            web.append((line, msmt))
            asn = asn or _known(msmt.get("probe_asn"), "AS0")
            cc = cc or _known(msmt.get("probe_cc"), "ZZ")
    probe_asn = (args.probe_asn or asn or "AS0").upper()
    if not probe_asn.startswith("AS"):
        probe_asn = "AS" + probe_asn
    if not probe_asn[2:].isdigit():
        raise UsageError(f"--probe-asn must look like AS12389, got {args.probe_asn!r}")
    probe_cc = (args.probe_cc or cc or "ZZ").upper()
    if len(probe_cc) != 2 or not probe_cc.isalpha():
        raise UsageError(f"--probe-cc must be a two-letter country code, got {args.probe_cc!r}")
    config = Config(
        timeouts=timeouts,
        privacy=Privacy(include_asn=not args.no_include_asn, include_cc=not args.no_include_cc),
        public_ranges=ranges,
        probe_asn=probe_asn,
        probe_cc=probe_cc,
    )
    return Plan(config=config, limits=limits, manual=manual_target, web=web)


def _check_asn_db(path: Path) -> None:
    """Refuse an ASN database that does not open (before anything is sent, and also when
    nothing would be: one answer whatever the privileges)."""
    from probe.geo.db import GeoDatabaseError, GeoDatabases

    try:
        GeoDatabases.open(asn_db=path, country_db=None).close()
    except GeoDatabaseError as exc:
        raise UsageError(f"ASN database: {exc}") from exc


def _known(value: object, unknown: str) -> str | None:
    return value if isinstance(value, str) and value and value != unknown else None


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def _execute(plan: Plan, args: argparse.Namespace) -> int:
    import orjson
    import trio

    from probe import registry
    from probe.geo.db import GeoDatabaseError, GeoDatabases
    from probe.packet.follow import follow_up
    from probe.packet.measure import measure_packet
    from probe.session import Session

    try:
        dbs = GeoDatabases.open(asn_db=args.asn_db, country_db=None)
    except GeoDatabaseError as exc:
        return _fail(f"ASN database: {exc}")
    session = Session.create(plan.config, test_name=registry.CENSOR_TRACE)
    output: Path = args.output or _default_output(session.report_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    ctx = packet_context(session, lookup=_lookup(dbs), limits=plan.limits)
    web_out: list[str] = []
    traced = 0

    async def main() -> None:
        nonlocal traced
        with output.open("w", encoding="utf-8") as fh:

            def write(msmt: dict[str, Any]) -> None:
                nonlocal traced
                msmt = session.finish(msmt)
                fh.write(orjson.dumps(msmt).decode("utf-8") + "\n")
                fh.flush()
                print(f"probe packet: {_summary(msmt)}", file=sys.stderr, flush=True)
                traced += 1

            if plan.manual is not None:
                write(await measure_packet(plan.manual, ctx=ctx))
            for line, web in plan.web:
                if web is None:
                    web_out.append(line)
                    continue
                merged, follow_ups = await follow_up(
                    web, ctx=ctx, extra_dns_servers=args.dns_server
                )
                for msmt in follow_ups:
                    write(msmt)
                if "x_packet" not in merged.get("test_keys", {}):
                    web_out.append(line)
                    continue
                web_out.append(orjson.dumps(session.finish(merged)).decode("utf-8"))

    with dbs:
        trio.run(main)
    if args.web_output is not None:
        _write_lines(args.web_output, web_out)
    print(f"probe packet: {traced} target(s) traced; measurements in {output}", file=sys.stderr)
    return 0


def _default_output(report_id: str) -> Path:
    from datetime import UTC, datetime

    return Path("results") / datetime.now(UTC).strftime("%Y-%m-%d") / f"{report_id}.jsonl"


def _lookup(dbs: Any) -> Any:
    """A router lookup (``probe.packet.hops.AsnLookup``) on the open ASN database."""

    def lookup(ip: str) -> tuple[int | None, str | None]:
        info = dbs.lookup(ip)
        return info.asn, info.network_name

    return lookup


def packet_context(session: Any, *, lookup: Any, limits: Any = None) -> Any:
    """The ``PacketContext`` of a packet report's session (``probe packet``, ``probe run
    --packet-level``): its run context, the limits, the router lookup, the web test's headers."""
    from probe.context import browser_headers
    from probe.packet.measure import PacketContext
    from probe.packet.spec import PacketLimits

    return PacketContext(
        run=session.ctx,
        limits=limits or PacketLimits(),
        lookup=lookup,
        headers=browser_headers(session.config),
    )


@contextmanager
def open_run_follow_ups(web: Any, *, geo: Any, output: Path, resume: bool) -> Iterator[Any]:
    """``probe run --packet-level``: the follow-up hook of the web ``Session`` ``web``
    (``probe.packet.follow.RunFollowUps``), its ``censor_trace`` report beside ``output``
    (continued on ``--resume``, as the web report is: ``probe.resume.continue_report``, which
    raises ``ResumeRefused`` for another test's or network's file). Raw sockets were checked
    before. Routers are looked up in the run's ASN database; without one no router address is
    published (docs/packet.md). Says in one line what the follow-ups did, and why they stopped
    when the report could not be written."""
    from probe import registry
    from probe.geo.db import GeoDatabaseError, GeoDatabases
    from probe.packet.follow import RunFollowUps, trace_report_path
    from probe.packet.hops import no_lookup
    from probe.resume import continue_report
    from probe.session import Session

    packet = Session.create(web.config, test_name=registry.CENSOR_TRACE, geo=geo)
    path = trace_report_path(output)
    if resume:
        packet = continue_report(packet, path)
    try:
        dbs: Any = GeoDatabases.open(asn_db=web.config.geolocate.asn_db, country_db=None)
    except GeoDatabaseError:
        dbs = None
    lookup = _lookup(dbs) if dbs is not None and dbs.asn is not None else no_lookup
    follow = RunFollowUps(
        ctx=packet_context(packet, lookup=lookup),
        finish_web=web.finish,
        finish_trace=packet.finish,
        report=path,
    )
    with closing(follow), dbs if dbs is not None else nullcontext():
        yield follow
    where = f" in {path}" if follow.written else ""
    print(
        f"probe run: packet-level: {follow.followed} blocked target(s) followed up, "
        f"{follow.written} censor_trace measurement(s){where}",
        file=sys.stderr,
    )
    if follow.write_error is not None:
        print(
            f"probe run: error: {follow.write_error}; the packet-level follow-ups stopped there "
            f"({follow.write_error.safe_lines} censor_trace measurement(s) are safe in {path})",
            file=sys.stderr,
        )


def _summary(msmt: dict[str, Any]) -> str:
    tk = msmt["test_keys"]
    target = tk["x_target"]
    where = f"{msmt['input']} {target['stage']} {target['address']}:{target['port']}"
    if tk.get("x_skipped"):
        return f"{where}: skipped ({tk['x_skipped']})"
    parts = []
    for c in tk.get("x_censors") or []:
        if c.get("status") == "found":
            parts.append(
                f"censor at hop {c['hop']} ({c['reaction']}, {c['placement']}), "
                f"path length {c['path_length']}"
            )
        else:
            parts.append(f"{c.get('status')}, path length {c.get('path_length')}")
    cost = f"{tk.get('x_packets_sent')} packets, {msmt.get('test_runtime')} s"
    return f"{where}: {'; '.join(parts) or 'no trace'} [{cost}]"
