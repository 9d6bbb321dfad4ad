"""`probe run`: measure web targets (or an app's API hosts) and write OONI JSONL.

The options (and the config file) become a typed :class:`probe.plan.RunPlan` (``_plan``), one
line and exit 2 for anything unusable; geolocation completes its identity; a
:class:`probe.session.Session` executes it. Only this module reads the argparse namespace.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from probe import inputs
from probe.commands.argtypes import count_arg, seconds_arg

if TYPE_CHECKING:
    from probe.config import Privacy
    from probe.consent import Publishing
    from probe.plan import RunPlan
    from probe.upload.policy import UploadPolicy

HELP = "measure targets stage by stage and write one OONI measurement per target (JSONL)"

DEFAULT_LIST = Path("targets/default.txt")
DEFAULT_CONTROL = "https://0.th.ooni.org/"
MAX_CONCURRENCY = 1000
MAX_TARGETS = 10**9


def _config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "censorprobe" / "config.toml"


def register(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("targets")
    src.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="URL",
        help="a URL to measure (repeatable)",
    )
    src.add_argument(
        "--list",
        "-l",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a target list: our format (targets/*.txt) or Citizen Lab CSV "
        f"(repeatable; default {DEFAULT_LIST} when no --input/--app)",
    )
    src.add_argument("--category", metavar="CODE", help="only targets of this category code")
    src.add_argument(
        "--limit",
        type=count_arg(0, MAX_TARGETS),
        metavar="N",
        help="measure at most N targets",
    )
    src.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="NAME",
        help="measure an app's API hosts: linkedin, whatsapp, telegram, signal, "
        "facebook_messenger or all (repeatable)",
    )
    src.add_argument(
        "--app-file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="measure the app described by this app file (repeatable)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE.jsonl",
        help="output file (default results/<date>/<report_id>.jsonl)",
    )
    out.add_argument(
        "--resume",
        type=Path,
        metavar="FILE",
        help="append to FILE, measuring only the targets not yet in it",
    )
    out.add_argument(
        "--no-progress", action="store_true", help="plain log lines even on a terminal"
    )
    net = parser.add_argument_group("network")
    net.add_argument(
        "--concurrency",
        "-c",
        type=count_arg(1, MAX_CONCURRENCY),
        default=20,
        metavar="N",
        help="targets measured at once (default 20)",
    )
    net.add_argument(
        "--resolver",
        metavar="IP[:PORT]",
        help="resolver for the wire-level DNS query (default: the system's)",
    )
    net.add_argument(
        "--ca-file",
        type=Path,
        metavar="PEM",
        help="trust this extra CA bundle (PEM) besides Mozilla's roots",
    )
    net.add_argument(
        "--control",
        metavar="URL",
        help=f"control vantage (Web Connectivity test helper; default from "
        f"{_config_path()} or {DEFAULT_CONTROL})",
    )
    net.add_argument("--no-control", action="store_true", help="measure without a control")
    net.add_argument(
        "--public-ranges",
        metavar="CIDR,...",
        help="treat these special-purpose ranges as public addresses (lab only)",
    )
    net.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML config file (default {_config_path()} if it exists)",
    )
    t = parser.add_argument_group("timeouts (seconds)")
    for name, what in (
        ("dns", "DNS lookup"),
        ("connect", "TCP connect"),
        ("tls", "TLS handshake"),
        ("http", "HTTP round trip"),
        ("control", "control request"),
        ("target", "whole target"),
        ("geolocate", "one public-IP discovery attempt"),
    ):
        t.add_argument(f"--timeout-{name}", type=seconds_arg(), metavar="S", help=f"{what} timeout")
    who = parser.add_argument_group("identity and privacy")
    who.add_argument("--probe-asn", metavar="ASN", help="your network's ASN, e.g. AS12389")
    who.add_argument("--probe-cc", metavar="CC", help="your country code, e.g. RU")
    for name, what in (
        ("ip", "your IP address (default off: it is scrubbed everywhere)"),
        ("asn", "your network's ASN (default on; off: AS0)"),
        ("cc", "your country (default on; off: ZZ)"),
    ):
        who.add_argument(
            f"--include-{name}",
            action=argparse.BooleanOptionalAction,
            help=f"publish {what}; default: your choice in `probe onboard` ([publish])",
        )
    pub = parser.add_argument_group("upload (see `probe onboard`)")
    pub.add_argument(
        "--no-upload",
        action="store_true",
        help="keep this run's measurements on this computer (config: [publish] upload = false)",
    )
    geo = parser.add_argument_group("geolocation (see docs/geolocation.md)")
    geo.add_argument(
        "--no-geolocate",
        action="store_true",
        help="do not discover the public IP nor look up ASN/country: only interface addresses "
        "are scrubbed and ASN/CC come from --probe-asn/--probe-cc",
    )
    geo.add_argument(
        "--asn-db", type=Path, metavar="PATH", help="ASN database (.mmdb; default: data dir)"
    )
    geo.add_argument(
        "--country-db",
        type=Path,
        metavar="PATH",
        help="country database (.mmdb; default: data dir)",
    )
    geo.add_argument(
        "--stun-server",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="STUN server for public-IP discovery (repeatable; default: the config file's "
        "or stun.l.google.com:19302, stun.cloudflare.com:3478)",
    )
    parser.set_defaults(func=run)


class UsageError(Exception):
    """A bad option or unusable input: one line, exit 2, before anything is measured."""


def _fail(message: str) -> int:
    print(f"probe run: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from probe import consent

    # the file given with --config must exist (and is read as every input file is)
    if (code := consent.require(args.config, named=args.config is not None)) is not None:
        return code
    try:
        plan = _plan(args)
        upload = _upload(args)
    except UsageError as exc:
        return _fail(str(exc))
    return _execute(plan, upload)


#: the config file's settings and their TOML types (other keys belong to other commands)
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "timeouts": (dict,),
    "resolver": (str,),
    "ca_file": (str,),
    "control_url": (str,),
    "probe_asn": (str, int),
    "probe_cc": (str,),
    "public_ranges": (str,),
    "geolocate": (dict, bool),
    "consent": (dict,),  # probe onboard's record (probe.consent)
    "publish": (dict,),
    "upload": (dict,),  # the upload policy's overrides (probe.upload.policy)
}


def _load_config_file(args: argparse.Namespace) -> dict[str, Any]:
    path = args.config or _config_path()
    if args.config is None and not path.exists():
        return {}
    try:
        table = inputs.toml_file(path, what="config file")
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    for name, types in CONFIG_TYPES.items():  # whatever the flags override: a typo is a typo
        value = table.get(name)
        if value is not None and (isinstance(value, bool) and bool not in types or
                                  not isinstance(value, types)):  # fmt: skip
            raise UsageError(f"config file {path}: {name} has the wrong type ({str(value)[:40]!r})")
    return table


def _plan(args: argparse.Namespace) -> RunPlan:
    from probe.config import Config, Timeouts, parse_ranges
    from probe.netaddr import parse_ip
    from probe.plan import AppWork, ListSource, RunPlan, Source, UrlSource, WebWork

    file_cfg = _load_config_file(args)
    timeouts_kw: dict[str, float] = {}
    file_timeouts = file_cfg.get("timeouts", {})
    if not isinstance(file_timeouts, dict):
        raise UsageError("config file: timeouts must be a table of seconds")
    for name in ("dns", "connect", "tls", "http", "control", "target", "geolocate"):
        value = getattr(args, f"timeout_{name}")
        if value is None and name in file_timeouts:
            try:
                value = inputs.seconds(
                    file_timeouts[name], name=f"config file: timeouts.{name}", text=False
                )
            except inputs.InputError as exc:
                raise UsageError(str(exc)) from exc
        if value is not None:
            timeouts_kw[name] = float(value)
    resolver = args.resolver or file_cfg.get("resolver")
    if resolver:
        resolver = _parse_resolver(str(resolver), parse_ip)
    ca_file = args.ca_file or (Path(str(file_cfg["ca_file"])) if "ca_file" in file_cfg else None)
    if ca_file is not None:
        _check_ca(ca_file)
    control = None
    if not args.no_control:
        control = str(args.control or file_cfg.get("control_url") or DEFAULT_CONTROL)
        try:
            control = inputs.target_url(control).url
        except inputs.InputError as exc:
            raise UsageError(f"--control must be an http(s) URL: {exc}") from exc
    asn = args.probe_asn or file_cfg.get("probe_asn") or "AS0"
    asn = str(asn).upper()
    if not asn.startswith("AS"):
        asn = "AS" + asn
    if not asn[2:].isdigit() or len(asn) > 12:
        raise UsageError(f"--probe-asn must look like AS12389, got {args.probe_asn!r}")
    cc = str(args.probe_cc or file_cfg.get("probe_cc") or "ZZ").upper()
    if len(cc) != 2 or not cc.isalpha() or not cc.isascii():
        raise UsageError(f"--probe-cc must be a two-letter country code, got {args.probe_cc!r}")
    try:
        ranges = parse_ranges(args.public_ranges or _text_setting(file_cfg, "public_ranges"))
    except ValueError as exc:
        raise UsageError(f"--public-ranges: {exc}") from exc

    geolocate = _plan_geolocate(args, file_cfg)
    config = Config(
        timeouts=Timeouts(**timeouts_kw),
        privacy=_privacy(args, file_cfg),
        resolver=resolver,
        ca_file=ca_file,
        control_url=control,
        probe_asn=asn,
        probe_cc=cc,
        public_ranges=ranges,
        concurrency=args.concurrency,
        geolocate=geolocate,
    )
    apps = _plan_apps(args)
    sources: list[Source] = []
    if args.input:
        for url in args.input:  # typed on the command line: refused at once, not skipped
            try:
                inputs.target_url(url)
            except inputs.InputError as exc:
                raise UsageError(f"--input: {exc}") from exc
        sources.append(UrlSource(tuple(args.input)))
    lists = list(args.list)
    if not lists and not args.input and not apps:
        lists = [DEFAULT_LIST]
    for path in lists:
        try:
            inputs.check_text_file(path, what="target list")
        except inputs.InputError as exc:
            raise UsageError(str(exc)) from exc
        sources.append(ListSource(path))

    output: Path | None = args.resume or args.output
    _check_writable(output)
    work: WebWork | AppWork
    if apps:
        work = AppWork(tuple(apps))
        total: int | None = len(apps)
    else:
        work = WebWork(tuple(sources), category=args.category, limit=args.limit)
        total = work.count()
    if total == 0 and lists and args.resume is None and args.limit != 0:
        raise UsageError(
            f"no measurable target in {', '.join(map(str, lists))}"
            + (f" (category {args.category})" if args.category else "")
        )
    return RunPlan(
        config=config,
        work=work,
        output=output,
        resume=args.resume is not None,
        total=total,
        live_progress=not args.no_progress,
        asn_explicit=bool(args.probe_asn or file_cfg.get("probe_asn")),
        cc_explicit=bool(args.probe_cc or file_cfg.get("probe_cc")),
    )


def _publishing(file_cfg: dict[str, Any]) -> Publishing:
    from probe.consent import ConsentError, read

    try:
        return read(file_cfg)[1]
    except ConsentError as exc:
        raise UsageError(str(exc)) from exc


def _privacy(args: argparse.Namespace, file_cfg: dict[str, Any]) -> Privacy:
    """What the volunteer chose to publish (``[publish] include_*``), a flag winning."""
    from probe.config import Privacy

    chosen = _publishing(file_cfg)

    def pick(name: str) -> bool:
        flag: bool | None = getattr(args, f"include_{name}")
        return bool(getattr(chosen, f"include_{name}")) if flag is None else flag

    return Privacy(include_ip=pick("ip"), include_asn=pick("asn"), include_cc=pick("cc"))


class _Upload(NamedTuple):
    publishing: Publishing
    policy: UploadPolicy


def _upload(args: argparse.Namespace) -> _Upload:
    """Where this run's measurements go besides the results file: the ``[publish]`` choices
    (``--no-upload`` wins) and the ``[upload]`` overrides."""
    from dataclasses import replace

    from probe.upload.policy import policy_from_config

    file_cfg = _load_config_file(args)
    publishing = _publishing(file_cfg)
    if args.no_upload:
        publishing = replace(publishing, upload=False)
    try:
        policy = policy_from_config(file_cfg)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if publishing.upload:
        _check_outbox()
    return _Upload(publishing, policy)


def _check_outbox() -> None:
    """Fail before measuring when the outbox cannot be opened (as for the output file)."""
    import sqlite3

    from probe.upload.outbox import Outbox, default_path

    path = default_path()
    try:
        Outbox(path).close()
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(
            f"cannot open the upload outbox {path}: {exc}; --no-upload measures without it"
        ) from exc


def _text_setting(file_cfg: dict[str, Any], name: str) -> str:
    """A config file setting that must be text ("" when absent)."""
    value = file_cfg.get(name, "")
    if not isinstance(value, str):
        raise UsageError(f"config file: {name} must be a string, got {str(value)[:40]!r}")
    return value


def _plan_geolocate(args: argparse.Namespace, file_cfg: dict[str, Any]) -> Any:
    """The ``Geolocate`` settings from flags > config file ``[geolocate]`` > defaults."""
    from probe.config import DEFAULT_STUN_SERVERS, Geolocate
    from probe.geo.db import GeoDatabaseError, GeoDatabases
    from probe.geo.publicip import split_host_port

    table = file_cfg.get("geolocate", {})
    if isinstance(table, bool):  # `geolocate = false` as a shorthand
        table = {"enabled": table}
    if not isinstance(table, dict):
        raise UsageError("config file: geolocate must be a table or a boolean")
    enabled = table.get("enabled", True)
    whoami = table.get("whoami", True)
    if not isinstance(enabled, bool) or not isinstance(whoami, bool):
        raise UsageError("config file: geolocate.enabled and geolocate.whoami are booleans")
    file_servers = table.get("stun_servers", list(DEFAULT_STUN_SERVERS))
    if not isinstance(file_servers, list) or not all(isinstance(x, str) for x in file_servers):
        raise UsageError("config file: geolocate.stun_servers is a list of HOST:PORT strings")
    servers = args.stun_server or file_servers
    for server in servers:
        try:
            split_host_port(server)
        except ValueError as exc:
            raise UsageError(f"--stun-server: {exc}") from exc
    paths: list[Path | None] = []
    for name in ("asn_db", "country_db"):
        value = getattr(args, name) or table.get(name)
        paths.append(Path(value).expanduser() if value else None)
    settings = Geolocate(
        enabled=enabled and not args.no_geolocate,
        whoami=whoami,
        stun_servers=tuple(servers),
        asn_db=paths[0],
        country_db=paths[1],
    )
    if settings.enabled:
        try:  # fail before measuring, not after
            GeoDatabases.open(asn_db=settings.asn_db, country_db=settings.country_db).close()
        except GeoDatabaseError as exc:
            raise UsageError(f"geolocation database: {exc}") from exc
    return settings


def _plan_apps(args: argparse.Namespace) -> list[Any]:
    if not args.app and not args.app_file:
        return []
    from probe.apps.spec import AppSpecError, load_app_file, load_builtin_apps

    try:
        for path in args.app_file:
            inputs.text_file(path, what="app file")
        apps = load_builtin_apps(args.app) if args.app else []
        apps += [load_app_file(p) for p in args.app_file]
    except (AppSpecError, inputs.InputError) as exc:
        raise UsageError(str(exc)) from exc
    return apps


def _parse_resolver(text: str, parse_ip: Any) -> str:
    """``IP[:PORT]`` (``[v6]:PORT``; port 53 by default) as the ``ip:port`` endpoint."""
    from probe.netaddr import join_endpoint, split_endpoint

    try:
        host, port = split_endpoint(text, default_port=53)
    except ValueError:
        host, port = "", 0
    addr = parse_ip(host)
    if addr is None or "%" in host or port == 0:
        raise UsageError(f"--resolver must be IP[:PORT], got {text!r}")
    return join_endpoint(str(addr), port)


def _check_ca(path: Path) -> None:
    import ssl

    try:
        inputs.readable_file(path, what="CA file")
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from exc
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise UsageError(f"CA file {path} is not a readable PEM bundle: {exc}") from exc


def _default_output_dir() -> Path:
    from datetime import UTC, datetime

    return Path("results") / datetime.now(UTC).strftime("%Y-%m-%d")


def _check_writable(output: Path | None) -> None:
    """Fail before measuring when ``output`` (or the default results directory) is unusable."""
    try:
        if output is None:
            directory = _default_output_dir()
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise UsageError(f"cannot write to {directory}")
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.is_dir():
            raise UsageError(f"output {output} is a directory")
        with output.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write output {output}: {exc.strerror or exc}") from exc


def _geolocate(plan: RunPlan) -> tuple[Any, Any]:
    """Run geolocation (or not) and merge it into the config; one summary line on stderr."""
    import trio

    from probe.geo.db import GeoDatabases
    from probe.geo.locate import OFF, apply, geolocate, summary
    from probe.stages.tls import make_ssl_context

    settings = plan.config.geolocate
    if settings.enabled:
        ssl_context = make_ssl_context(ca_file=plan.config.ca_file)
        with GeoDatabases.open(asn_db=settings.asn_db, country_db=settings.country_db) as dbs:
            geo = trio.run(lambda: geolocate(plan.config, ssl_context=ssl_context, databases=dbs))
    else:
        geo = OFF
    config, geo = apply(
        plan.config, geo, asn_explicit=plan.asn_explicit, cc_explicit=plan.cc_explicit
    )
    print(f"probe run: {summary(geo, config)}", file=sys.stderr, flush=True)
    return config, geo


def _execute(plan: RunPlan, upload: _Upload) -> int:
    import trio

    from probe.session import Session
    from probe.upload.live import LiveUpload, live_upload

    config, geo = _geolocate(plan)
    session = Session.create(config, test_name=plan.test_name, geo=geo)
    output = plan.output or _default_output_dir() / f"{session.report_id}.jsonl"
    if plan.resume:
        from probe.resume import ResumeRefused, continue_report

        try:
            session = continue_report(session, output)
        except ResumeRefused as exc:
            return _fail(str(exc))
    uploads: list[LiveUpload | None] = []

    async def measure_and_upload() -> Any:
        async with live_upload(
            upload.publishing, policy=upload.policy, ca_file=config.ca_file
        ) as live:
            uploads.append(live)
            return await session.run(plan, output, written=live.add if live else None)

    try:
        stats = trio.run(measure_and_upload)
    except KeyboardInterrupt:
        print(f"probe run: aborted; whole lines kept in {output}", file=sys.stderr)
        return 130
    live = uploads[0] if uploads else None
    off = "off (measurements stay on this computer)"
    upload_line = f"upload: {live.summary(output) if live else off}"
    if stats.write_error is not None:  # the lines written before it were queued all the same
        from probe.resume import write_error_line

        print(upload_line)
        print(write_error_line(stats.write_error), file=sys.stderr)
        return 1
    from probe.progress import print_summary

    print_summary(stats, str(output))
    print(upload_line)
    return 130 if stats.interrupted else 0
