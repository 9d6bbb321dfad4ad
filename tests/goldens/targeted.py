"""Targeted golden cases: one scripted fake network per rule no lab scenario, OONI QA case or
shared sample reaches, so that every rule id (web and apps) fires on a golden.

Each :class:`Targeted` names the rule it exists for and says why; :func:`capture` measures it
with the real orchestrator and stages on :mod:`tests.fakes` (virtual time, trustme TLS, a
scripted test helper answering through the same network), applies the registry's analysis as
``Session.finish`` does, and fixes the wall-clock fields so that a re-capture only differs
where the facts do (certificates are new each time: re-capture on purpose, not routinely).
A :class:`Web` case with ``before`` URLs is the last target of a run (:mod:`probe.runfacts`:
those are measured first and teach it its baseline; the canary's name comes from a seeded
generator). Issue 16 item 4 keeps three servers that misbehave without any censor, measured
with no control: none of them may be called IP blocking.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import random
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import trio
import trio.testing

from probe import registry
from probe.apps.runner import measure_app
from probe.apps.spec import load_app_file
from probe.experiment import measure_web
from probe.privacy import scrub_measurement
from probe.runfacts import RunFacts, nxdomain_canary
from tests.fakes import servers as fs
from tests.fakes.context import PUBLIC, run_context
from tests.fakes.network import Host, fake_network, serve, unreachable
from tests.goldens import tiers
from tests.unit.servers import Certs

SITE, OTHER, LIE, TH = "198.18.1.1", "198.18.1.2", "198.18.9.9", "198.19.0.100"
CONTROL_URL = "https://th.test/"
START = "2026-01-01 00:00:00"


def th_answer(
    request: Mapping[str, Any],
    *,
    addrs: list[str],
    tcp: bool | str = True,
    tls: bool | str | None = None,
    status: int = 200,
    http_failure: str | None = None,
    title: str = "Site",
    body_length: int = 500,
    transfer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A TH answer for ``request``: every endpoint connects (or fails with ``tcp``), TLS on the
    https ones (``tls``), the fetch gets ``status`` (or ``http_failure``), with our helper's
    ``x_transfer`` timings when given."""
    tcp_results: dict[str, Any] = {}
    tls_results: dict[str, Any] = {}
    for ep in request.get("tcp_connect") or []:
        tcp_results[ep] = {"status": tcp is True, "failure": None if tcp is True else tcp}
        if tls is not None:
            tls_results[ep] = {
                "server_name": "site.test",
                "status": tls is True,
                "failure": None if tls is True else tls,
            }
    if http_failure is not None:
        http: dict[str, Any] = {
            "body_length": -1, "discovered_h3_endpoint": "", "failure": http_failure,
            "title": "", "headers": {}, "status_code": -1,
        }  # fmt: skip
    else:
        http = {
            "body_length": body_length, "discovered_h3_endpoint": "", "failure": None,
            "title": title, "headers": {"Content-Type": "text/html"}, "status_code": status,
        }  # fmt: skip
        if transfer is not None:
            http["x_transfer"] = {"body_length": body_length, **transfer}
    return {
        "tcp_connect": tcp_results,
        "tls_handshake": tls_results,
        "quic_handshake": {},
        "http_request": http,
        "http3_request": None,
        "dns": {"failure": None, "addrs": addrs},
        "ip_info": {a: {"asn": 0, "flags": 2} for a in addrs},
    }


Answer = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Web:
    """A Web Connectivity case: the URL, the network, the TH's answer."""

    url: str
    endpoints: Callable[[Certs], dict[str, Any]]
    hosts: Mapping[str, Any]
    answer: Answer | None = None
    probe_cc: str = "ZZ"
    #: measured first, in the same run (the baseline of ``url``)
    before: tuple[str, ...] = ()


@dataclass(frozen=True)
class App:
    """An app case: the app file's text, the network, the TH's answer (None: no control)."""

    app_file: str
    endpoints: Callable[[Certs], dict[str, Any]]
    hosts: Mapping[str, Any]
    answer: Answer | None = None


@dataclass(frozen=True)
class Targeted:
    name: str
    rule_id: str
    why: str
    case: Web | App


def _page(title: str) -> fs.Handler:
    return fs.http(fs.page(title, size=500))


def _https(certs: Certs, title: str, name: str = "site.test") -> fs.Handler:
    return fs.tls(certs.server_context(name), _page(title))


def _answer(**kw: Any) -> Answer:
    return lambda request: th_answer(request, **kw)


def _host_filter(instead: str, blocked: str = "site.test") -> fs.Handler:
    """A middlebox acting on requests whose Host is ``blocked`` ("*": every request)."""

    def respond(request: fs.Request) -> fs.Reply:
        if blocked in ("*", request.host):
            return fs.Reply(instead=instead)
        return fs.page("vhost", size=500)

    return fs.http(respond)


def _untrusted(certs: Certs) -> fs.Handler:
    other = Certs(Path(tempfile.mkdtemp(prefix="goldens-")))
    return fs.tls(other.server_context("site.test"), _page("Site"))


def _old_tls(certs: Certs) -> fs.Handler:
    context = certs.server_context("site.test")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    return fs.tls(context, _page("Site"))


def _eacces() -> Any:
    return unreachable(13)  # EACCES: a local firewall said no


def _raw(answer: bytes, *, then: str) -> fs.Handler:
    """A server that reads the request head, writes ``answer`` as it is (no HTTP framing),
    then closes (``then="close"``) or never says anything more (:data:`fs.HANG`)."""

    async def handler(stream: trio.abc.Stream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some()
            if not chunk:
                return
            head += chunk
        if answer:
            await stream.send_all(answer)
        if then == fs.HANG:
            await trio.sleep_forever()
        await stream.aclose()

    return handler


#: a request line some servers refuse outright (16 kB)
LONG_PATH = "/search?q=" + "x" * 16000
#: the open sites of a run: a 20 ms connect, a 60 kB page at 1 MB/s (the run's baseline)
OPEN = {f"open{i}.test": f"198.18.1.{10 + i}" for i in range(3)}
CONTROL_TIMES = {"t_connect": 0.005, "t_tls": 0.01, "t_first_byte": 0.02, "t_done": 0.03}


def _run_of(certs: Certs, shaped: Mapping[str, fs.Handler]) -> dict[str, Any]:
    """The open sites plus ``shaped`` (address -> handler), behind the same 20 ms connect."""
    out: dict[str, Any] = {}
    for name, ip in OPEN.items():
        site = fs.tls(certs.server_context(name), fs.http(fs.page(name, size=60_000)))
        out[f"{ip}:443"] = serve(fs.throttle(1_000_000, site), delay=0.02)
    for ip, shape in shaped.items():
        out[f"{ip}:443"] = serve(shape, delay=0.02)
    return out


def _sni_capped(certs: Certs, name: str, *, rate: float, size: int) -> fs.Handler:
    site = fs.tls(certs.server_context(name), fs.http(fs.page(name, size=size)))
    return fs.throttle(rate, site, sni={name})


CASES: tuple[Targeted, ...] = (
    Targeted(
        "unusable-input", "input.unusable",
        "a URL without a host: nothing to judge (the probe still writes the measurement)",
        Web("http:///index.html", lambda c: {}, {}),
    ),
    Targeted(
        "dns-temporary-failure", "dns.failure",
        "the system resolver fails with EAI_AGAIN (not NXDOMAIN) while the control resolves",
        Web("http://site.test/", lambda c: {}, {"site.test": Host(error=-3)},
            _answer(addrs=[SITE])),
    ),
    Targeted(
        "dns-lie-serves-blockpage", "dns.unexpected_address_blockpage",
        "the resolver's answer (never seen by the control) serves a fingerprinted blockpage",
        Web(
            "http://site.test/",
            lambda c: {f"{LIE}:80": serve(fs.http(fs.Reply(
                headers=[("Content-Type", "text/html; charset=utf-8")],
                body="<html><body>Доступ к ресурсу ограничен</body></html>".encode()
                + b" " * 400,
            )))},
            {"site.test": [LIE]},
            _answer(addrs=[SITE], title="Site"),
        ),
    ),
    Targeted(
        "tls-reset-any-sni", "tcp.ip_blocked_sni_diag_control",
        "every handshake to the address is reset, the innocuous-SNI retry too, while the "
        "control's handshake there worked: IP blocking",
        Web("https://site.test/", lambda c: {f"{SITE}:443": serve(fs.rst_after(1))},
            {"site.test": [SITE]}, _answer(addrs=[SITE], tls=True)),
    ),
    Targeted(
        "http-host-drop", "http.host_diag_timeout",
        "a request naming the site never gets an answer, the innocuous Host one does",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(_host_filter(fs.HANG))},
            {"site.test": [SITE]}, _answer(addrs=[SITE])),
    ),
    Targeted(
        "http-reset-any-host", "tcp.ip_blocked_host_diag_control",
        "every request to the address is reset, with the innocuous Host too, the server never "
        "sent a byte, and the control fetched the page: IP-level blocking",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(_host_filter(fs.RESET, "*"))},
            {"site.test": [SITE]}, _answer(addrs=[SITE])),
    ),
    Targeted(
        "server-error-everywhere", "down.server_error",
        "the site answers 503 to the probe and to the control: an outage, not censorship",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(fs.http(fs.Reply(status=503)))},
            {"site.test": [SITE]}, _answer(addrs=[SITE], status=503)),
    ),
    Targeted(
        "ipv6-only-unreachable", "unknown.probe_no_ipv6",
        "the name has only an IPv6 address and the probe's network has no IPv6 route",
        Web("http://v6.site.test/", lambda c: {"[2001:db8::80]:80": unreachable(101)},
            {"v6.site.test": ["2001:db8::80"]}, _answer(addrs=["2001:db8::80"])),
    ),
    Targeted(
        "redirect-target-temporary-failure", "dns.later_hop_failure",
        "the site redirects to a name the probe's resolver fails on (EAI_AGAIN); the control "
        "followed the redirect",
        Web("http://site.test/",
            lambda c: {f"{SITE}:80": serve(fs.http(fs.redirect("http://www.site.test/")))},
            {"site.test": [SITE], "www.site.test": Host(error=-3)}, _answer(addrs=[SITE])),
    ),
    Targeted(
        "connect-permission-denied", "tcp.other",
        "the connect fails with EACCES (a local firewall) while the control connected",
        Web("http://site.test/", lambda c: {f"{SITE}:80": _eacces()}, {"site.test": [SITE]},
            _answer(addrs=[SITE])),
    ),
    Targeted(
        "tls-untrusted-certificate", "tls.certificate",
        "the probe meets a certificate from an unknown authority, the control's validated",
        Web("https://site.test/", lambda c: {f"{SITE}:443": serve(_untrusted(c))},
            {"site.test": [SITE]}, _answer(addrs=[SITE], tls=True)),
    ),
    Targeted(
        "tls-protocol-version", "tls.other",
        "the server only speaks TLS 1.1: a handshake failure that is no reset, timeout, EOF or "
        "certificate error, while the control's handshake worked",
        Web("https://site.test/", lambda c: {f"{SITE}:443": serve(_old_tls(c))},
            {"site.test": [SITE]}, _answer(addrs=[SITE], tls=True)),
    ),
    Targeted(
        "control-fetch-failed-probe-ok", "unknown.undetermined",
        "the probe fetched the page over plain HTTP, the control's fetch failed: no rule decides",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(_page("Site"))},
            {"site.test": [SITE]}, _answer(addrs=[SITE], http_failure="connection_reset")),
    ),
    Targeted(
        "dns-answer-is-a-known-blockpage-address", "dns.blockpage_ip",
        "in Iran the resolver answers 10.10.34.35, a blockpage address OONI's DNS fingerprints "
        "know (the verdict uses ../shared's fingerprints); never contacted (a private address)",
        Web("http://site.test/", lambda c: {}, {"site.test": ["10.10.34.35"]},
            _answer(addrs=[SITE]), probe_cc="IR"),
    ),
    Targeted(
        "app-host-reset", "apps.blocked",
        "the app's only host is reset after the ClientHello while the control's handshake works",
        App('[[hosts]]\nid = "api"\nhost = "api.demo.test"\n',
            lambda c: {f"{SITE}:443": serve(fs.rst_after(1))}, {"api.demo.test": [SITE]},
            _answer(addrs=[SITE], tls=True)),
    ),
    Targeted(
        "app-host-down-everywhere", "apps.down",
        "the app's only host refuses the probe and the control alike: an outage",
        App('[[hosts]]\nid = "api"\nhost = "api.demo.test"\n',
            lambda c: {f"{SITE}:443": unreachable(111)}, {"api.demo.test": [SITE]},
            _answer(addrs=[SITE], tcp="connection_refused_error",
                    http_failure="connection_refused_error")),
    ),
    Targeted(
        "app-nothing-counts", "apps.no-hosts",
        "an app file whose only host is measured but kept out of the verdict",
        App('[[hosts]]\nid = "status"\nhost = "status.demo.test"\nstage = "tcp"\n'
            "in_verdict = false\n",
            lambda c: {f"{SITE}:443": serve(fs.silent)}, {"status.demo.test": [SITE]}),
    ),
    Targeted(
        "app-failure-without-control", "apps.no-control",
        "an app host is reset after the ClientHello and no control vantage was configured",
        App('[[hosts]]\nid = "api"\nhost = "api.demo.test"\n',
            lambda c: {f"{SITE}:443": serve(fs.rst_after(1))}, {"api.demo.test": [SITE]}),
    ),
    Targeted(
        "http-network-down", "http.other",
        "the connection breaks with ENETDOWN once the request is sent (no reset, timeout or "
        "EOF) while the control fetched the page: the HTTP step's catch-all",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(fs.rst_after(
            1, error=OSError(errno.ENETDOWN, os.strerror(errno.ENETDOWN))))},
            {"site.test": [SITE]}, _answer(addrs=[SITE])),
    ),
    Targeted(
        "throttled-tiny-page-stage-times", "http.throttled_stage_times",
        "a 2 kB page behind a 16 kbit/s cap keyed on its name, after three open sites of the "
        "run: handshake and page take over a second where the baseline and the control take "
        "milliseconds; the follow-up crawls too but is over in under 2 s, too short for a "
        "goodput: the stage times decide (issue 16 item 5)",
        Web("https://capped.test/",
            lambda c: _run_of(c, {SITE: _sni_capped(c, "capped.test", rate=2_000, size=2_000)}),
            {**{n: [ip] for n, ip in OPEN.items()}, "capped.test": [SITE]},
            _answer(addrs=[SITE], tls=True, transfer=CONTROL_TIMES),
            before=tuple(f"https://{n}/" for n in OPEN)),
    ),
    Targeted(
        "server-http09-no-control", "unknown.control_unavailable",
        "no control; the server answers HTTP/0.9 (a body, no status line) and closes, to the "
        "innocuous-Host retry too: a broken server, no evidence of IP blocking (issue 16 "
        "item 4; tcp/ip-blocked before)",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(_raw(
            b"<html><body>an HTTP/0.9 answer, no status line</body></html>", then="close"))},
            {"site.test": [SITE]}),
    ),
    Targeted(
        "server-stalls-no-control", "unknown.control_unavailable",
        "no control; the server sends two bytes of its status line and stalls, for the "
        "innocuous-Host retry too: a slow server, no evidence of IP blocking (issue 16 item 4)",
        Web("http://site.test/", lambda c: {f"{SITE}:80": serve(_raw(b"HT", then=fs.HANG))},
            {"site.test": [SITE]}),
    ),
    Targeted(
        "server-resets-huge-request-no-control", "unknown.control_unavailable",
        "no control; the server resets a 16 kB request line without answering it, the "
        "innocuous-Host retry's too: no evidence of IP blocking (issue 16 item 4)",
        Web(f"http://site.test{LONG_PATH}",
            lambda c: {f"{SITE}:80": serve(fs.rst_after(16000))}, {"site.test": [SITE]}),
    ),
)  # fmt: skip


#: an OONI app measurement (OONI's own data shape, no plan of ours) without its status keys
OONI_WITHOUT_STATUS = {
    "name": "ooni-signal-without-status",
    "rule_id": "apps.ooni.no-status",
    "why": "OONI's signal test keys without signal_backend_status: nothing to conclude",
}


async def _run(case: Targeted, certs: Certs, workdir: Path) -> dict[str, Any]:
    spec = case.case
    th = fs.tls(certs.server_context("th.test"), fs.th(spec.answer)) if spec.answer else None
    endpoints = dict(spec.endpoints(certs))
    hosts: dict[str, Any] = dict(spec.hosts)
    if th is not None:
        endpoints[f"{TH}:443"] = serve(th)
        hosts["th.test"] = [TH]
    control = CONTROL_URL if th is not None else None
    public = (*PUBLIC, ipaddress.ip_network("2001:db8::/32"))
    cc = spec.probe_cc if isinstance(spec, Web) else "ZZ"
    async with fake_network(endpoints=endpoints, hosts=hosts) as net:
        ctx = run_context(
            net, ca_file=certs.ca_file, control_url=control, public=False, probe_cc=cc
        )
        ctx = _with_public(ctx, public)
        if isinstance(spec, Web):
            if spec.before:
                canary = await nxdomain_canary(
                    timeouts=ctx.config.timeouts, net=net, rng=random.Random(0)
                )
                ctx = replace(ctx, run_facts=RunFacts(canary=canary))
                for url in spec.before:
                    await measure_web(url, ctx=ctx)
            return await measure_web(spec.url, ctx=ctx)
        path = workdir / "app.toml"
        path.write_text(f'name = "demo"\ntitle = "Demo"\n{spec.app_file}', encoding="utf-8")
        app = load_app_file(path)
        return await measure_app(app, ctx=ctx, test=registry.app_test(app.ooni_test))


def _with_public(ctx: Any, public: tuple[Any, ...]) -> Any:
    return replace(ctx, config=replace(ctx.config, public_ranges=public))


def _finish(measurement: dict[str, Any], *, shared: bool) -> dict[str, Any]:
    """What ``Session.finish`` does (the published copy, then the verdict keys computed from
    it), with the wall-clock fields fixed. The fake network has no volunteer address."""
    test = registry.lookup(measurement["test_name"])
    assert test is not None
    fps = tiers.fingerprints(shared)
    measurement = scrub_measurement(measurement, probe_ips=())
    measurement["test_keys"].update(test.analyze(measurement, fingerprints=fps))
    measurement["measurement_start_time"] = START
    measurement["test_start_time"] = START
    return measurement


def capture(case: Targeted) -> dict[str, Any]:
    """Measure ``case`` on the fake network, in virtual time."""
    with tempfile.TemporaryDirectory(prefix="goldens-") as tmp:
        certs = Certs(Path(tmp))
        measurement: dict[str, Any] = trio.run(
            _run, case, certs, Path(tmp), clock=trio.testing.MockClock(autojump_threshold=0)
        )
    return _finish(measurement, shared=f"targeted/{case.name}" in tiers.WITH_SHARED_FINGERPRINTS)


def ooni_without_status() -> dict[str, Any]:
    """A minimal OONI signal measurement whose test keys lack the status key."""
    return {
        "annotations": {},
        "data_format_version": "0.2.0",
        "input": None,
        "measurement_start_time": START,
        "probe_asn": "AS0",
        "probe_cc": "ZZ",
        "report_id": "20260101T000000Z_signal_ZZ_0_n1_AAAAAAAAAAAAAAAA",
        "software_name": "ooniprobe-android",
        "software_version": "3.8.0",
        "test_keys": {"queries": [], "tcp_connect": [], "requests": []},
        "test_name": "signal",
        "test_runtime": 1.0,
        "test_start_time": START,
        "test_version": "0.2.5",
    }
