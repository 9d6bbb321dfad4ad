"""`probe collector serve` over HTTP on 127.0.0.1: the spec cases of ooni/spec bk-003 we rely on
(request and answer shapes, status codes, errors), real measurements from OONI's probes and
ours, the store in OONI's layout read back by OONI's own data client."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from probe.collector import layout
from tests.conformance.check import REF_PYTHON
from tests.unit.collectors import (
    UID_RE,
    measurements,
    ooni,
    open_report,
    ours,
    read_store_lines,
    running_collector,
    template_of,
)

STORE_SCRIPT = Path(__file__).resolve().parents[1] / "conformance" / "oonidata_store.py"


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=30)


def _body(msmt: dict[str, Any]) -> bytes:
    return orjson.dumps({"format": "json", "content": msmt})


def oonidata_reads(store: Path) -> list[dict[str, Any]]:
    """The store as OONI's data client reads it (subprocess under .venv-ref)."""
    out = subprocess.run(
        [str(REF_PYTHON), str(STORE_SCRIPT), str(store)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    parts: list[dict[str, Any]] = json.loads(out.stdout)
    return parts


async def test_open_submit_close_then_oonis_tools_read_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    log: list[dict[str, Any]] = []
    async with running_collector(store, log=log) as running, _client() as client:
        base = running.urls[0]
        hello = await client.get(base + "/")
        assert hello.status_code == 200 and hello.json()["supported_formats"] == ["json"]
        uids: dict[str, str] = {}
        for base_msmt in (ooni(), ours()):
            resp = await client.post(base + "/report", json=template_of(base_msmt))
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("application/json")
            opened = resp.json()
            assert set(opened) == {"backend_version", "report_id", "supported_formats"}
            assert "json" in opened["supported_formats"]
            rid = opened["report_id"]
            assert rid.split("_")[1] == base_msmt["test_name"].replace("_", "")
            for msmt in measurements(3, base=base_msmt, report_id=rid):
                resp = await client.post(f"{base}/report/{rid}", content=_body(msmt))
                assert resp.status_code == 200, resp.text
                uid = resp.json()["measurement_uid"]
                assert UID_RE.match(uid)
                uids[uid] = rid
                again = await client.post(f"{base}/report/{rid}", content=_body(msmt))
                assert again.json() == {"measurement_uid": uid}  # stored once
            closed = await client.post(f"{base}/report/{rid}/close")
            assert closed.status_code == 200 and closed.json() == {"status": "success"}
        keys = await running.roller.roll_now()
        assert running.app.accepted == 6 and running.app.duplicates == 6
    assert all(layout.parse_part_key(k) for k in keys) and len(keys) == 2
    assert {r["uid"] for r in log if r["uid"]} == set(uids)
    assert all(r["client"] == "127.0.0.0/24" for r in log)  # a prefix, never the address
    lines = read_store_lines(store)
    assert sorted(m["measurement_uid"] for m in lines) == sorted(uids)
    parts = oonidata_reads(store)
    assert sorted(uid for p in parts for uid, _, _ in p["rows"]) == sorted(uids)
    for part in parts:
        meta = layout.parse_part_key(part["key"])
        assert meta is not None
        assert part["timestamp"] == f"{meta.date}{meta.hour:02d}"
        assert (part["probe_cc"], part["testname"]) == (meta.cc, meta.test)
        assert all(uids[uid] == rid for uid, rid, _ in part["rows"])


async def test_the_probe_keeps_its_own_report_id(tmp_path: Path) -> None:
    msmt = ours()  # AS0 / ZZ: OONI's backend drops these silently, we keep them
    async with running_collector(tmp_path / "s") as running, _client() as client:
        base = running.urls[0]
        template = {**template_of(msmt), "x_report_id": msmt["report_id"]}
        opened = (await client.post(base + "/report", json=template)).json()
        assert opened["report_id"] == msmt["report_id"]
        raw = orjson.dumps(msmt)
        resp = await client.post(
            f"{base}/report/{msmt['report_id']}",
            content=b'{"format":"json","content":' + raw + b"}",
        )
        assert resp.status_code == 200
        await running.roller.roll_now()
    (stored,) = read_store_lines(tmp_path / "s")
    assert stored == {**msmt, "measurement_uid": resp.json()["measurement_uid"]}


async def _status(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    resp = await client.request(method, url, **kw)
    assert resp.headers["content-type"].startswith("application/json")
    if resp.status_code >= 400:
        body = resp.json()
        assert set(body) == {"error", "message"}
    return resp


async def test_error_statuses(tmp_path: Path) -> None:
    (msmt,) = measurements(1, base=ooni())
    async with running_collector(tmp_path / "s", "--max-body", "300000") as running:
        base = running.urls[0]
        async with _client() as client:
            rid = await open_report(client, base, msmt)
            msmt["report_id"] = rid
            cases: list[tuple[str, str, dict[str, Any], int, str]] = [
                ("GET", "/report", {}, 405, "method_not_allowed"),
                ("POST", "/reports", {}, 404, "not_found"),
                ("POST", "/report/x/y/z", {}, 404, "not_found"),
                ("POST", "/report/not-a-report", {"content": _body(msmt)}, 404, "no_such_report"),
                ("POST", "/report/not-a-report/close", {}, 404, "no_such_report"),
                ("POST", "/report", {"content": b"{"}, 400, "bad_request"),
                ("POST", f"/report/{rid}", {"content": b"[1]"}, 400, "bad_request"),
                (
                    "POST",
                    f"/report/{rid}",
                    {"content": orjson.dumps({"format": "yaml", "content": "a: 1"})},
                    400,
                    "unsupported_format",
                ),
                (
                    "POST",
                    f"/report/{rid}",
                    {"content": _body(msmt), "headers": {"content-encoding": "br"}},
                    415,
                    "unsupported_encoding",
                ),
                ("POST", f"/report/{rid}", {"content": b"x" * 310_000}, 413, "too_large"),
                (
                    "POST",
                    f"/report/{rid}",
                    {
                        "content": gzip.compress(b" " * 400_000),
                        "headers": {"content-encoding": "gzip"},
                    },
                    413,
                    "too_large",
                ),
                (
                    "POST",
                    f"/report/{rid}",
                    {"content": b"\x1f\x8b not gzip", "headers": {"content-encoding": "gzip"}},
                    400,
                    "bad_request",
                ),
            ]
            for method, path, kw, status, code in cases:
                try:
                    resp = await _status(client, method, base + path, **kw)
                except httpx.HTTPError as exc:
                    raise AssertionError(f"{path} {status} {kw.get('headers')}") from exc
                assert (resp.status_code, resp.json().get("error")) == (status, code), path

            async def chunks() -> Any:
                for _ in range(40):
                    yield b"x" * 8192  # no Content-Length: the cap applies as it streams

            resp = await _status(client, "POST", f"{base}/report/{rid}", content=chunks())
            assert resp.status_code == 413
            ok = await _status(
                client,
                "POST",
                f"{base}/report/{rid}",
                content=gzip.compress(_body(msmt)),
                headers={"content-encoding": "gzip"},
            )
            assert ok.status_code == 200 and UID_RE.match(ok.json()["measurement_uid"])
        assert running.app.accepted == 1


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    async with running_collector(tmp_path / "s", "--rate-limit", "3/min") as running:
        async with _client() as client:
            statuses = []
            for _ in range(5):
                resp = await client.post(running.urls[0] + "/report", json=template_of(ooni()))
                statuses.append(resp.status_code)
            assert statuses == [200, 200, 200, 429, 429]
            assert resp.headers["retry-after"] == "5"
            assert resp.json()["error"] == "rate_limited"


@pytest.mark.parametrize(
    "options",
    [
        ["--listen", "nohost"],
        ["--tls-cert", "/nonexistent"],
        ["--store", "s3://"],
        ["--collector-id", "-1"],
    ],
)
def test_bad_options_fail_with_one_line(options: list[str]) -> None:
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "probe", "collector", "serve", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("probe collector: error:") or "error:" in proc.stderr
    assert "Traceback" not in proc.stderr
