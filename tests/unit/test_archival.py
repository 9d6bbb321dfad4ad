"""probe.archival: real OONI measurements load and dump back unchanged; our types are strict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from probe.archival import (
    TEST_KEYS_MODELS,
    BinaryData,
    ControlResponse,
    DNSQuery,
    HTTPRequest,
    HTTPResponse,
    HTTPTransaction,
    Measurement,
    NetworkEvent,
    TCPConnect,
    TCPConnectStatus,
    WebConnectivityTestKeys,
    maybe_binary,
    maybe_binary_bytes,
    measurement_to_json,
)
from probe.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ooni-samples"


def _samples() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(SAMPLES.glob("*.json")):
        out.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
    for path in sorted(SAMPLES.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(x for x in lines if x.strip()):
            out.append((f"{path.name}:{i + 1}", json.loads(line)))
    return out


SAMPLE_CASES = _samples()


def type_strict_diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences between two JSON values; unlike ==, 0 and 0.0 (or 1 and True) differ."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} {a!r:.40} became {type(b).__name__} {b!r:.40}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: dropped" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}: added" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            out += type_strict_diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items became {len(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += type_strict_diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {a!r:.40} became {b!r:.40}"]


def test_samples_are_there() -> None:
    assert len(SAMPLE_CASES) >= 30
    names = {d["test_name"] for _, d in SAMPLE_CASES}
    assert {"web_connectivity", "whatsapp", "telegram", "signal", "facebook_messenger"} <= names


@pytest.mark.parametrize(("name", "data"), SAMPLE_CASES, ids=[n for n, _ in SAMPLE_CASES])
def test_real_measurement_round_trips(name: str, data: dict[str, Any]) -> None:
    msmt = Measurement.model_validate(data)
    model = TEST_KEYS_MODELS.get(data["test_name"])
    if model is not None:
        assert type(msmt.test_keys) is model, name
    else:
        assert type(msmt.test_keys) is dict, name
    back = msmt.model_dump(mode="json", exclude_unset=True)
    assert type_strict_diff(data, back) == []
    # and through JSON text too (the writer's path)
    again = Measurement.model_validate_json(msmt.model_dump_json(exclude_unset=True))
    assert type_strict_diff(data, again.model_dump(mode="json", exclude_unset=True)) == []


def test_type_strict_diff_catches_int_to_float() -> None:
    assert type_strict_diff({"t": 0}, {"t": 0.0}) != []
    assert type_strict_diff({"t": [1]}, {"t": [True]}) != []


def test_web_connectivity_sample_is_typed_deeply() -> None:
    data = json.loads((SAMPLES / "probecli-lte-real-IT-accessible-nexa.json").read_text())
    tk = Measurement.model_validate(data).test_keys
    assert isinstance(tk, WebConnectivityTestKeys)
    assert tk.queries and isinstance(tk.queries[0], DNSQuery)
    assert isinstance(tk.control, ControlResponse)
    assert tk.requests and isinstance(tk.requests[0], HTTPTransaction)
    # x_ keys of other probe versions survive as extras
    assert tk.model_extra is not None and "x_dns_whoami" in tk.model_extra


def test_binary_body_of_the_russian_blockpage() -> None:
    name = "explorer-fixture-RU-webconnectivity-http-diff-blockpage-"
    path = next(SAMPLES.glob(name + "*.json"))
    tk = Measurement.model_validate(json.loads(path.read_text())).test_keys
    assert isinstance(tk, WebConnectivityTestKeys) and tk.requests
    response = tk.requests[0].response
    assert response is not None and isinstance(response.body, BinaryData)
    raw = maybe_binary_bytes(response.body)
    assert "СЛУЖБА ПО НАДЗОРУ".encode("cp1251") in raw  # the Roskomnadzor blockpage
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_integers_stay_integers_and_floats_stay_floats() -> None:
    ev = NetworkEvent(operation="read", t0=0, t=0.25, num_bytes=10)
    dumped = ev.model_dump(mode="json")
    assert type(dumped["t0"]) is int and type(dumped["t"]) is float


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (TCPConnect, {"ip": "1.1.1.1", "port": "443", "status": {"success": True}}),
        (TCPConnect, {"ip": "1.1.1.1", "port": True, "status": {"success": True}}),
        (TCPConnect, {"ip": "1.1.1.1", "port": 443, "status": {"success": "yes"}}),
        (TCPConnect, {"ip": "1.1.1.1", "port": 443, "status": {"success": True}, "t0": "0.1"}),
        (DNSQuery, {"hostname": "a", "query_type": "A", "answers": {"answer_type": "A"}}),
        (DNSQuery, {"hostname": "a", "query_type": "A", "failure": False}),
        (DNSQuery, {"hostname": 1, "query_type": "A"}),
        (HTTPResponse, {"code": 200.0}),
        (HTTPRequest, {"url": "http://x/", "headers_list": [["a", 1]]}),
        (NetworkEvent, {"operation": "read", "tags": ("a",), "transaction_id": "1"}),
    ],
)
def test_wrong_types_are_rejected_not_coerced(model: type[Any], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_legacy_false_failure_is_accepted_only_where_real_data_has_it() -> None:
    status = TCPConnectStatus.model_validate({"success": False, "failure": False})
    assert status.model_dump(mode="json")["failure"] is False
    with pytest.raises(ValidationError):
        TCPConnectStatus.model_validate({"success": False, "failure": True})


def test_errors_point_inside_test_keys() -> None:
    data = {
        "measurement_start_time": "2025-01-01 00:00:00",
        "test_start_time": "2025-01-01 00:00:00",
        "software_name": "x",
        "software_version": "1",
        "test_name": "web_connectivity",
        "test_version": "0.5.28",
        "test_keys": {"tcp_connect": [{"ip": "1.1.1.1", "port": "80", "status": {}}]},
    }
    with pytest.raises(ValidationError) as info:
        Measurement.model_validate(data)
    locs = {tuple(e["loc"]) for e in info.value.errors()}
    assert ("test_keys", "tcp_connect", 0, "port") in locs


def test_unknown_test_keeps_a_dict_even_if_a_model_would_accept_it() -> None:
    data = {
        "measurement_start_time": "2025-01-01 00:00:00",
        "test_start_time": "2025-01-01 00:00:00",
        "software_name": "x",
        "software_version": "1",
        "test_name": "dnscheck",
        "test_version": "0.9.3",
        "test_keys": {"agent": "redirect"},
    }
    msmt = Measurement.model_validate(data)
    assert msmt.test_keys == {"agent": "redirect"}
    assert measurement_to_json(msmt)["test_keys"] == {"agent": "redirect"}


def test_writer_emits_every_documented_key() -> None:
    msmt = Measurement(
        measurement_start_time="2025-01-01 00:00:00",
        test_start_time="2025-01-01 00:00:00",
        software_name="censorprobe",
        software_version="0.1.0",
        test_name="web_connectivity",
        test_version="0.5.28",
        test_keys=WebConnectivityTestKeys(),
    )
    out = measurement_to_json(msmt)
    for key in ("input", "report_id", "probe_ip", "annotations", "test_helpers", "extensions"):
        assert key in out
    assert out["input"] is None and out["probe_ip"] == "127.0.0.1"
    tk = out["test_keys"]
    for key in ("control_failure", "blocking", "accessible", "dns_consistency", "requests"):
        assert key in tk
    assert tk["socksproxy"] is None and tk["retries"] is None and tk["agent"] == "redirect"
    tx = HTTPTransaction(request=HTTPRequest(url="http://x/"), failure="connection_reset")
    dumped = tx.model_dump(mode="json")
    assert dumped["response"]["code"] == 0 and dumped["request"]["tor"]["is_tor"] is False


def test_headers_list_is_pairs() -> None:
    req = HTTPRequest.model_validate(
        {"url": "http://x/", "headers_list": [["A", "1"], ("B", BinaryData.of(b"\xff"))]}
    )
    assert req.headers_list == [("A", "1"), ("B", BinaryData.of(b"\xff"))]
    assert req.model_dump(mode="json")["headers_list"][1] == [
        "B",
        {"format": "base64", "data": "/w=="},
    ]


@given(st.binary(max_size=300))
def test_maybe_binary_round_trips_bytes(raw: bytes) -> None:
    value = maybe_binary(raw)
    assert maybe_binary_bytes(value) == raw
    if isinstance(value, str):
        assert value.encode("utf-8") == raw
    # and through the model + JSON text
    resp = HTTPResponse(code=200, body=value)
    again = HTTPResponse.model_validate_json(resp.model_dump_json())
    assert maybe_binary_bytes(again.body) == raw


_floats = st.one_of(
    st.integers(min_value=0, max_value=10**6), st.floats(min_value=0, max_value=1e6)
)


@given(
    port=st.integers(min_value=0, max_value=65535),
    t0=_floats,
    t=_floats,
    failure=st.one_of(st.none(), st.text(max_size=30)),
    tags=st.lists(st.text(max_size=10), max_size=3),
)
def test_events_round_trip_through_json(
    port: int, t0: float, t: float, failure: str | None, tags: list[str]
) -> None:
    ev = TCPConnect(
        ip="192.0.2.1",
        port=port,
        status=TCPConnectStatus(success=failure is None, failure=failure),
        t0=t0,
        t=t,
        tags=tags,
        transaction_id=3,
    )
    text = ev.model_dump_json()
    again = TCPConnect.model_validate_json(text)
    assert type_strict_diff(ev.model_dump(mode="json"), again.model_dump(mode="json")) == []
    assert type_strict_diff(json.loads(text), again.model_dump(mode="json")) == []


def test_probe_schema_command_prints_the_measurement_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Measurement"
    refs = json.dumps(schema["properties"]["test_keys"])
    assert "#/$defs/WebConnectivityTestKeys" in refs
    wc = schema["$defs"]["WebConnectivityTestKeys"]["properties"]
    assert {"queries", "tcp_connect", "tls_handshakes", "requests", "control"} <= set(wc)
    assert schema["$defs"]["TCPConnect"]["properties"]["port"]["type"] == "integer"
