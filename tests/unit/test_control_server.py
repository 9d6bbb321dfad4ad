"""The control server end to end: `probe helper serve` options, hypercorn (trio worker) on
127.0.0.1, real loopback targets (plain and TLS), and OONI's own parser on the answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import trio

from probe.archival import ControlRequest, ControlResponse
from probe.cli import build_parser
from probe.commands import helper
from probe.config import Timeouts, parse_ranges
from probe.control import protocol
from probe.control.client import query_control
from probe.control.measure import MeasureSettings, measure
from probe.control.safety import AddressPolicy
from probe.stages.tls import make_ssl_context
from tests.unit.servers import Certs, closed_port, http_server, response, silent, tcp_server

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / ".venv-ref" / "bin" / "python"
PAGE = b"<html><head><title>Hello Control</title></head><body>" + b"x" * 1000 + b"</body></html>"


@asynccontextmanager
async def running_helper(*options: str) -> AsyncIterator[tuple[str, Any, list[dict[str, Any]]]]:
    """`probe helper serve --listen 127.0.0.1:0 OPTIONS` in-process: (url, app, log records)."""
    args = build_parser().parse_args(["helper", "serve", "--listen", "127.0.0.1:0", *options])
    records: list[dict[str, Any]] = []
    app, config = helper.build(args, log=records.append)
    config.errorlog = None
    from probe.control.server import serve

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, app, config)
        yield binds[0] + "/", app, records
        nursery.cancel_scope.cancel()


async def post(url: str, body: bytes | dict[str, Any], **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient(trust_env=False, timeout=None, **kw) as client:
        return await client.post(url, content=content)


def ooni_accepts(control: dict[str, Any]) -> None:
    """OONI's oonidata model for ``test_keys.control`` parses the answer (subprocess)."""
    code = (
        "import json, sys\n"
        "from oonidata.models.nettests.web_connectivity import WebConnectivityControl as C\n"
        "c = C.from_dict(json.load(sys.stdin))\n"
        "print(json.dumps({'status_code': c.http_request.status_code,"
        " 'tcp': sorted(c.tcp_connect or {})}))\n"
    )
    out = subprocess.run(
        [str(REF_PYTHON), "-c", code],
        input=json.dumps(control),
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = json.loads(out.stdout)
    assert parsed["status_code"] == control["http_request"]["status_code"]
    assert parsed["tcp"] == sorted(control["tcp_connect"])


async def test_hello_and_response_shape_for_a_plain_http_site() -> None:
    async with (
        http_server(
            [response(PAGE, headers=["Content-Type: text/html", "X-A: 1", "x-a: 2"])]
        ) as site,
        running_helper("--lab-allow-ranges", "127.0.0.0/8") as (url, _app, records),
    ):
        async with httpx.AsyncClient(trust_env=False) as client:
            hello = await client.get(url)
        assert hello.status_code == 200 and "test helper" in hello.json()["message"]
        target = f"http://127.0.0.1:{site.port}/page"
        request = {
            "http_request": target,
            "http_request_headers": {
                "User-Agent": ["test-agent/1"],
                "Accept": ["text/html"],
                "Cookie": ["secret=1"],
            },
            "tcp_connect": [f"127.0.0.1:{site.port}"],
            "x_quic_enabled": False,
        }
        r = await post(url, request)
        assert r.status_code == 200
        body = r.json()
    assert set(body) >= {"tcp_connect", "tls_handshake", "quic_handshake", "http_request",
                         "http3_request", "dns", "ip_info"}  # fmt: skip
    ControlResponse.model_validate(body)
    assert body["tcp_connect"] == {f"127.0.0.1:{site.port}": {"status": True, "failure": None}}
    assert body["dns"] == {"failure": None, "addrs": ["127.0.0.1"]}
    assert body["ip_info"] == {"127.0.0.1": {"asn": 0, "flags": 1 | 2}}
    http = body["http_request"]
    assert http["status_code"] == 200 and http["failure"] is None
    assert http["body_length"] == len(PAGE) and http["title"] == "Hello Control"
    assert http["headers"]["Content-Type"] == "text/html"
    assert http["headers"]["X-A"] == "1"  # one value per (canonical) name, the first
    xfer = http["x_transfer"]
    assert xfer["body_length"] == len(PAGE) and 0 <= xfer["t_first_byte"] <= xfer["t_done"]
    assert xfer["t_connect"] >= 0 and xfer["t_tls"] is None  # cleartext: no handshake
    # only UA/Accept/Accept-Language are forwarded
    (head_bytes,) = [h for h in site.requests if h]  # the other connection was TCP only
    head = head_bytes.decode().lower()
    assert "user-agent: test-agent/1" in head and "accept: text/html" in head
    assert "secret" not in head
    (record,) = [r for r in records if r["method"] == "POST"]
    assert record["status"] == 200 and record["url_host"] == "127.0.0.1"
    assert record["client"] == "127.0.0.0/24" and record["endpoints"] == 1
    ooni_accepts(body)


async def test_https_site_tls_flags_redirects_and_refused_port(tmp_path: Path) -> None:
    certs = Certs(tmp_path)
    tls_ctx = certs.server_context("127.0.0.1", "localhost")
    async with (
        http_server([response(PAGE)], ssl_context=tls_ctx) as site,
        http_server(
            [
                response(
                    b"", status="302 Found", headers=[f"Location: https://127.0.0.1:{site.port}/"]
                )
            ]
        ) as hop,
        running_helper("--lab-allow-ranges", "127.0.0.0/8", "--ca-file", str(certs.ca_file)) as (
            url,
            _app,
            _records,
        ),
    ):
        # the probe's endpoint is an extra address: 127.0.0.2 (also loopback, nobody there)
        dead = closed_port()
        r = await post(
            url,
            {
                "http_request": f"http://127.0.0.1:{hop.port}/",
                "tcp_connect": [f"127.0.0.2:{hop.port}"],
            },
        )
        body = r.json()
        assert body["http_request"]["status_code"] == 200
        assert body["http_request"]["body_length"] == len(PAGE)
        assert body["tcp_connect"][f"127.0.0.1:{hop.port}"]["status"] is True
        assert body["ip_info"]["127.0.0.2"]["flags"] == 1
        assert body["ip_info"]["127.0.0.1"]["flags"] == 2

        r = await post(url, {"http_request": f"https://127.0.0.1:{dead}/", "tcp_connect": []})
        body = r.json()
        assert body["tcp_connect"] == {
            f"127.0.0.1:{dead}": {"status": False, "failure": "connection_refused_error"}
        }
        assert body["http_request"]["failure"] == "connection_refused_error"
        assert body["http_request"]["status_code"] == -1
        assert body["http_request"]["body_length"] == -1
        ooni_accepts(body)


async def test_tls_is_only_measured_on_the_tls_port(tmp_path: Path) -> None:
    certs = Certs(tmp_path)
    async with (
        http_server([response(PAGE)], ssl_context=certs.server_context("127.0.0.1")) as site,
        running_helper("--lab-allow-ranges", "127.0.0.0/8") as (url, _app, _records),
    ):
        r = await post(url, {"http_request": f"https://127.0.0.1:{site.port}/"})
        body = r.json()
    assert body["tls_handshake"] == {}  # the site is not on 443
    assert body["ip_info"]["127.0.0.1"]["flags"] == 2
    # the fetch used TLS and failed verification (CA not given): a TLS failure is
    # "unknown_error" in the TH's legacy HTTP vocabulary
    assert body["http_request"]["failure"] == "unknown_error"


async def test_tls_handshake_and_valid_for_domain_flag(tmp_path: Path) -> None:
    certs = Certs(tmp_path)
    async with (
        http_server([response(PAGE)], ssl_context=certs.server_context("127.0.0.1")) as site,
    ):
        target = protocol.parse_request(
            json.dumps({"http_request": f"https://127.0.0.1:{site.port}/"}).encode(),
            max_endpoints=4,
        )
        base = MeasureSettings(policy=AddressPolicy.of(parse_ranges("127.0.0.0/8")),
                               tls_port=site.port)  # fmt: skip
        trusted = replace(base, ssl_context=make_ssl_context(ca_file=certs.ca_file))
        ok = await measure(target, settings=trusted)
        bad = await measure(target, settings=base)
    endpoint = f"127.0.0.1:{site.port}"
    assert ok["tls_handshake"] == {
        endpoint: {"server_name": "127.0.0.1", "status": True, "failure": None}
    }
    assert ok["ip_info"]["127.0.0.1"]["flags"] == 2 | 8
    assert ok["http_request"]["status_code"] == 200
    assert bad["tls_handshake"][endpoint]["failure"] == "ssl_unknown_authority"  # modern
    assert bad["ip_info"]["127.0.0.1"]["flags"] == 2
    ooni_accepts(ok)


async def test_ssrf_names_resolving_to_loopback_are_never_contacted() -> None:
    connections: list[int] = []

    async def count(stream: trio.abc.Stream) -> None:
        connections.append(1)

    async with (
        tcp_server(count) as site,
        running_helper() as (url, _app, _records),
    ):
        r = await post(
            url,
            {
                "http_request": f"http://localhost:{site.port}/",
                "tcp_connect": [f"127.0.0.1:{site.port}", f"[::1]:{site.port}"],
            },
        )
        assert r.status_code == 200
        body = r.json()
        # a redirect (or a literal) to loopback is refused as well
        r2 = await post(url, {"http_request": f"http://127.0.0.1:{site.port}/"})
        body2 = r2.json()
    assert connections == []
    assert body["tcp_connect"] == {}
    assert "127.0.0.1" in body["dns"]["addrs"]
    assert body["ip_info"]["127.0.0.1"]["flags"] & 4
    assert body["http_request"]["failure"] == "dns_lookup_error"
    assert body2["tcp_connect"] == {} and body2["http_request"]["status_code"] == -1
    ooni_accepts(body)


async def test_redirect_to_a_refused_address_is_not_followed() -> None:
    connections: list[int] = []

    async def count(stream: trio.abc.Stream) -> None:
        connections.append(1)

    async with (
        tcp_server(count, host="::1") as inner,
        http_server(
            [response(b"", status="302 Found", headers=[f"Location: http://[::1]:{inner.port}/"])]
        ) as hop,
        running_helper("--lab-allow-ranges", "127.0.0.0/8") as (url, _app, _records),
    ):
        r = await post(url, {"http_request": f"http://127.0.0.1:{hop.port}/"})
        body = r.json()
    assert connections == []
    assert body["http_request"]["failure"] == "dns_lookup_error"
    assert len([h for h in hop.requests if h]) == 1  # the other connection is TCP only


async def test_bad_input_gets_clear_4xx_json() -> None:
    async with running_helper("--max-endpoints", "2", "--max-body", "1024") as (url, _a, rec):
        cases: list[tuple[bytes | dict[str, Any], int, str]] = [
            (b"not json", 400, "bad_json"),
            (b"[1, 2]", 400, "bad_request"),
            ({"http_request": 5}, 400, "bad_request"),
            ({"tcp_connect": []}, 400, "bad_request"),
            (
                {"http_request": "http://a.example/", "tcp_connect": "1.2.3.4:80"},
                400,
                "bad_request",
            ),
            ({"http_request": "ftp://a.example/"}, 400, "bad_url"),
            ({"http_request": "http:///nohost"}, 400, "bad_url"),
            ({"http_request": "http://a b.example/"}, 400, "bad_url"),
            (
                {"http_request": "http://a.example/", "tcp_connect": ["1.1.1.1:1"] * 3},
                400,
                "too_many_endpoints",
            ),
            (
                {"http_request": "http://a.example/", "tcp_connect": ["a.example:80"]},
                400,
                "bad_endpoint",
            ),  # fmt: skip
            (
                {"http_request": "http://a.example/", "tcp_connect": ["1.1.1.1"]},
                400,
                "bad_endpoint",
            ),  # fmt: skip
            (
                {"http_request": "http://a.example/", "tcp_connect": ["1.1.1.1:99999"]},
                400,
                "bad_endpoint",
            ),  # fmt: skip
            (b"{" + b" " * 2000 + b"}", 413, "too_large"),
        ]
        for body, status, code in cases:
            r = await post(url, body)
            assert (r.status_code, r.json()["error"]) == (status, code), body
            assert r.json()["message"]
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(url + "nope")).status_code == 404
            assert (await client.put(url, content=b"{}")).status_code == 405
    assert [r["status"] for r in rec if r["method"] == "POST"] == [c[1] for c in cases]


async def test_rate_limit_per_client() -> None:
    async with running_helper("--rate-limit", "2/min") as (url, app, _records):
        statuses = [(await post(url, b"x")).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    assert len(app.rate_limiter) == 1


async def test_overload_answers_503(tmp_path: Path) -> None:
    accepted = trio.Event()

    async def hang(stream: trio.abc.Stream) -> None:
        accepted.set()
        await silent(stream)

    async with (
        tcp_server(hang) as stall,
        running_helper("--lab-allow-ranges", "127.0.0.0/8", "--max-concurrency", "1") as (
            url,
            app,
            _records,
        ),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(post, url, {"http_request": f"http://127.0.0.1:{stall.port}/"})
        await accepted.wait()
        assert app.gate.in_flight == 1
        r = await post(url, {"http_request": f"http://127.0.0.1:{stall.port}/"})
        assert r.status_code == 503 and r.json()["error"] == "overloaded"
        # through the probe's client, 503 is a control failure
        answer, failure = await query_control(
            url,
            ControlRequest(http_request=f"http://127.0.0.1:{stall.port}/"),
            ssl_context=make_ssl_context(),
            timeouts=Timeouts(control=30.0),
        )
        assert (answer, failure) == (None, "http_request_failed")
        nursery.cancel_scope.cancel()


async def test_helper_over_tls_with_the_probe_client(tmp_path: Path) -> None:
    certs = Certs(tmp_path)
    leaf = certs.ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "th.pem", tmp_path / "th.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    async with (
        http_server([response(PAGE)]) as site,
        running_helper(
            "--lab-allow-ranges", "127.0.0.0/8", "--tls-cert", str(cert), "--tls-key", str(key)
        ) as (url, _app, _records),
    ):
        assert url.startswith("https://")
        request = ControlRequest(
            http_request=f"http://127.0.0.1:{site.port}/",
            tcp_connect=[f"127.0.0.1:{site.port}"],
        )
        answer, failure = await query_control(
            url,
            request,
            ssl_context=make_ssl_context(ca_file=certs.ca_file),
            timeouts=Timeouts(),
        )
        assert failure is None and answer is not None
        assert answer["http_request"]["title"] == "Hello Control"
        untrusted = await query_control(
            url, request, ssl_context=make_ssl_context(), timeouts=Timeouts()
        )
    assert untrusted == (None, "ssl_unknown_authority")


def test_cli_rejects_bad_options() -> None:
    for options in (
        ["--listen", "nope"],
        ["--rate-limit", "fast"],
        ["--lab-allow-ranges", "10.0.0.0/33"],
        ["--tls-cert", "/nonexistent.pem"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "probe", "helper", "serve", *options],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert out.returncode == 2, options
        assert out.stderr.startswith("probe helper: error:"), out.stderr


async def test_a_compressed_body_is_measured_decoded_like_the_probe_publishes_it() -> None:
    """The probe publishes a gzip body decoded (probe.privacy); the helper's body_length and
    title must describe the same bytes, or every such site would look altered."""
    import gzip

    packed = gzip.compress(PAGE)
    async with (
        http_server([response(packed, headers=["Content-Encoding: gzip"])]) as site,
        running_helper("--lab-allow-ranges", "127.0.0.0/8") as (url, _app, _records),
    ):
        request = {"http_request": f"http://127.0.0.1:{site.port}/", "tcp_connect": []}
        http = (await post(url, request)).json()["http_request"]
    assert http["body_length"] == len(PAGE) and http["title"] == "Hello Control"
    assert http["x_transfer"]["body_length"] == len(packed)  # the bytes on the wire
