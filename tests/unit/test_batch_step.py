"""Reader, flattening, app verdicts and the per-chunk step, on real OONI samples."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from probe.batch.flatten import STAGE_COLUMNS, observation_rows
from probe.batch.reader import Chunk, discover, iter_chunks
from probe.batch.schema import OBSERVATION_SCHEMA
from probe.batch.step import NAMESPACE, StepOptions, measurement_id, process_chunk
from probe.batch.verdict import derive_verdict

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLES = SHARED / "ooni-samples"


def _load(name: str) -> dict:
    return orjson.loads((SAMPLES / name).read_bytes())


def _chunk(lines: list[bytes], source: str = "t.jsonl") -> Chunk:
    return Chunk(0, source, tuple(range(1, len(lines) + 1)), tuple(lines))


def test_reader_jsonl_gz_and_pretty_json(tmp_path: Path) -> None:
    msmt = _load("probecli-minipipeline-wc-dnsBlockingNXDOMAIN.json")
    with gzip.open(tmp_path / "a.jsonl.gz", "wb") as fh:
        fh.write(orjson.dumps(msmt) + b"\n\n" + orjson.dumps(msmt) + b"\n")
    (tmp_path / "b.json").write_bytes(orjson.dumps(msmt, option=orjson.OPT_INDENT_2))
    (tmp_path / "notes.txt").write_text("ignored")
    files = discover([tmp_path])
    assert [f.source for f in files] == [f"{tmp_path.name}/a.jsonl.gz", f"{tmp_path.name}/b.json"]
    chunks = list(iter_chunks(files, max_lines=1))
    assert [(c.source.split("/")[1], c.line_numbers) for c in chunks] == [
        ("a.jsonl.gz", (1,)),
        ("a.jsonl.gz", (3,)),
        ("b.json", (1,)),
    ]


def test_broken_lines_are_reported_with_line_numbers_not_fatal() -> None:
    path = SAMPLES / "edge-cases" / "synthetic-broken-web_connectivity.jsonl"
    chunk = _chunk(path.read_bytes().splitlines(), "broken.jsonl")
    result = process_chunk(chunk, StepOptions())
    assert [(p.line, p.kind) for p in result.malformed] == [(9, "json")]
    rows = next(iter(result.measurements.values())).to_pylist()
    assert len(rows) == 8
    issues = {(p.line, p.detail) for p in result.edge_cases}
    assert (3, "test_keys:missing") in issues
    assert (5, "probe_asn:int") in issues
    assert (8, "measurement_start_time:iso8601") in issues


def test_ids_are_deterministic_and_observations_flattened() -> None:
    msmt = _load("probecli-minipipeline-wc-tlsBlockingConnectionResetWithConsistentDNS.json")
    result = process_chunk(_chunk([orjson.dumps(msmt)], "x.jsonl"), StepOptions())
    (part,) = result.measurements
    assert part == ("2024-02-12", "IT")
    row = result.measurements[part].to_pylist()[0]
    assert row["msmt_id"] == measurement_id("x.jsonl", 1)
    assert (
        row["msmt_id"]
        == process_chunk(_chunk([orjson.dumps(msmt)], "x.jsonl"), StepOptions())
        .measurements[part]
        .to_pylist()[0]["msmt_id"]
    )
    obs = result.observations[part].to_pylist()
    assert row["n_observations"] == len(obs)
    stages = {o["stage"] for o in obs}
    assert {"dns", "tcp", "tls"} <= stages
    tls = [o for o in obs if o["stage"] == "tls"]
    assert any(o["failure"] == "connection_reset" for o in tls)
    assert all(o["obs_id"].startswith(row["msmt_id"]) for o in obs)


def test_app_verdicts_from_their_test_keys() -> None:
    """OONI's app measurements: the one app engine reads OONI's status keys back."""

    def verdict(msmt: dict) -> dict:
        v = derive_verdict(msmt)
        assert v["verdict_source"] == "apps" and v["rules_version"] == "apps-2"
        return v

    signal = _load(
        "explorer-fixture-IR-signal-nxdomain-20210415084230.511612_IR_signal_ed269d082953bf2e.json"
    )
    v = verdict(signal)
    assert (v["blocking"], v["anomaly"], v["outcome"], v["rule_id"]) == (
        "signal_backend",
        True,
        "dns/nxdomain",
        "apps.ooni.blocked",
    )
    wa = _load(
        "explorer-fixture-JP-whatsapp-tls-20221105223930.168194_JP_whatsapp_e3e891f975f0d5ef.json"
    )
    v = verdict(wa)
    assert v["blocking"] == "registration_server,whatsapp_web"
    assert v["outcome"] == "tls/invalid-hostname"
    tg = _load(
        "explorer-fixture-RU-telegram-web-blocked-20221109225810.435617_RU_telegram_ecbc73cacd8ea566.json"
    )
    v = verdict(tg)
    assert v["blocking"] == "telegram_web" and "timeout" in v["outcome"]
    fb = _load(
        "explorer-fixture-RU-facebookmessenger-dns-01202003044cadd4e9b30806be0e72a6e05e161a.json"
    )
    assert verdict(fb)["blocking"] == "facebook_dns"
    ok = _load("spec-example-ts-018-whatsapp.json")
    assert (verdict(ok)["anomaly"], verdict(ok)["rule_id"]) == (False, "apps.ooni.accessible")
    empty = verdict({"test_name": "signal", "test_keys": {}})
    assert (empty["anomaly"], empty["rule_id"]) == (None, "apps.ooni.no-status")


def test_app_endpoints_get_a_verdict() -> None:
    """Our generic app test is analysed in the batch too (it was not before)."""
    msmt = {
        "test_name": "app_endpoints",
        "input": "app:demo",
        "test_keys": {
            "x_app": "demo",
            "x_app_hosts": [{"id": "api", "host": "api.demo", "ports": [443]}],
            "queries": [{"hostname": "api.demo", "failure": "dns_nxdomain_error",
                         "tags": ["x_app_host=api"]}],
            "x_app_control": [{"host_id": "api", "port": 443, "failure": None, "response": {
                "dns": {"failure": None, "addrs": ["198.18.0.1"]}, "tcp_connect": {},
                "tls_handshake": {}, "http_request": {"failure": None, "status_code": 200}}}],
        },
    }  # fmt: skip
    v = derive_verdict(msmt)
    assert (v["blocking"], v["accessible"], v["outcome"], v["rule_id"]) == (
        "api", False, "dns/nxdomain", "apps.blocked",
    )  # fmt: skip


def test_web_verdict_comes_from_the_current_rules() -> None:
    msmt = _load("probecli-minipipeline-wc-dnsBlockingNXDOMAIN.json")
    del msmt["test_keys"]["blocking"]  # the recorded verdict must not be what we report
    result = process_chunk(_chunk([orjson.dumps(msmt)]), StepOptions())
    row = next(iter(result.measurements.values())).to_pylist()[0]
    assert row["verdict_source"] == "analysis"
    assert row["blocking"] == "dns" and row["anomaly"] is True
    assert row["rules_version"] and row["outcome"].startswith("dns/")
    assert row["recorded_blocking"] is None


@given(st.text(max_size=80), st.integers(min_value=0, max_value=2**40))
def test_measurement_id_is_uuid5(source: str, line: int) -> None:
    assert measurement_id(source, line) == str(uuid.uuid5(NAMESPACE, f"{source}:{line}"))


def test_stage_columns_follow_the_schema() -> None:
    assert OBSERVATION_SCHEMA.names[8:] == list(STAGE_COLUMNS)
    assert OBSERVATION_SCHEMA.names[:8] == [
        "obs_id",
        "msmt_id",
        "obs_index",
        "test_name",
        "target",
        "probe_cc",
        "probe_asn",
        "measurement_start_time",
    ]


def test_dictionary_columns_exist_in_their_tables() -> None:
    from probe.batch.schema import DICTIONARY_COLUMNS, SCHEMAS

    for name, columns in DICTIONARY_COLUMNS.items():
        assert set(columns) <= set(SCHEMAS[name].names), name


def test_integer_columns_keep_int64_values_and_drop_the_rest() -> None:
    values = [0, -1, 2**62 - 1, 2**62, -(2**62), -(2**62) - 1, 2**63 - 1, -(2**63),
              2**63, -(2**63) - 1, 10**30, True, 1.0, "7"]  # fmt: skip
    connects = [{"ip": "192.0.2.1", "port": 443, "transaction_id": v} for v in values]
    rows = observation_rows({"test_keys": {"tcp_connect": connects}})
    tids = [dict(zip(STAGE_COLUMNS, row, strict=True))["transaction_id"] for row in rows]
    int64 = [v if type(v) is int and -(2**63) <= v < 2**63 else None for v in values]
    assert tids == int64 and int64.count(None) == 6
