"""The collector protocol's pure parts: templates, report ids, submissions, uids, the dedup
digest and the store layout (tables of spec cases, and properties with hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from probe.collector import layout, protocol
from probe.collector.protocol import ProtocolError
from tests.unit.collectors import UID_RE, measurements, ooni, ours, template_of

NOW = datetime(2026, 12, 5, 10, 11, 12, 345678, tzinfo=UTC)
GOLDENS = Path(__file__).resolve().parents[1] / "goldens" / "lab"

#: bk-003 3.1's example template (mkcollector)
SPEC_TEMPLATE = {
    "data_format_version": "0.2.0",
    "format": "json",
    "probe_asn": "AS30722",
    "probe_cc": "IT",
    "software_name": "mkcollector",
    "software_version": "0.0.1",
    "test_name": "dummy",
    "test_version": "0.0.1",
}


def _open(**changes: object) -> dict[str, object]:
    return {**SPEC_TEMPLATE, **changes}


def test_spec_example_template_opens_a_modern_report() -> None:
    template = protocol.parse_open(json.dumps(SPEC_TEMPLATE).encode())
    rid = protocol.report_id_for(template, now=NOW, collector_id=3)
    parts = protocol.parse_report_id(rid)
    assert parts is not None
    assert (parts.stamp, parts.test, parts.cc, parts.asn, parts.collector) == (
        "20261205T101112Z",
        "dummy",
        "IT",
        30722,
        "3",
    )
    assert len(parts.tail) >= 43  # 256 random bits
    assert rid != protocol.report_id_for(template, now=NOW, collector_id=3)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "bad_request"),
        (b"[]", "bad_request"),
        (json.dumps(_open(format="yaml")).encode(), "unsupported_format"),
        (
            json.dumps({k: v for k, v in SPEC_TEMPLATE.items() if k != "format"}).encode(),
            "unsupported_format",
        ),
        (json.dumps(_open(probe_asn="30722")).encode(), "bad_request"),
        (json.dumps(_open(probe_asn="AS12345678901")).encode(), "bad_request"),
        (json.dumps(_open(probe_cc="it")).encode(), "bad_request"),
        (json.dumps(_open(software_name="mk collector")).encode(), "bad_request"),
        (json.dumps(_open(test_name="dummy;rm")).encode(), "bad_request"),
        (json.dumps(_open(test_start_time="2018-11-01T15:33:17Z")).encode(), "bad_request"),
        (json.dumps(_open(content="{}")).encode(), "bad_request"),
        (json.dumps(_open(test_helper="web-connectivity")).encode(), "bad_request"),
        (
            json.dumps({k: v for k, v in SPEC_TEMPLATE.items() if k != "test_version"}).encode(),
            "bad_request",
        ),
        (json.dumps(_open(probe_asn=30722)).encode(), "bad_request"),
    ],
)
def test_bad_templates_get_4xx(body: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_open(body)
    assert info.value.status == 400
    assert info.value.code == code


def test_template_probe_ip_is_dropped_and_extras_ignored() -> None:
    template = protocol.parse_open(
        json.dumps(_open(probe_ip="203.0.113.9", input_hashes=[], x_other=1)).encode()
    )
    assert "203.0.113.9" not in repr(template)


def test_probe_minted_report_id_is_kept_only_when_consistent() -> None:
    msmt = ours()
    own = msmt["report_id"]  # 20261129T114356Z_webconnectivity_ZZ_0_n0_...
    template = protocol.parse_open(json.dumps({**template_of(msmt), "x_report_id": own}).encode())
    assert protocol.report_id_for(template, now=NOW, collector_id=1) == own
    for wrong in (
        own.replace("_ZZ_", "_IT_"),
        own.replace("_0_n0", "_7_n0"),
        own.replace("webconnectivity", "telegram"),
        own + "!",
        "",
    ):
        template = protocol.parse_open(
            json.dumps({**template_of(msmt), "x_report_id": wrong}).encode()
        )
        assert protocol.report_id_for(template, now=NOW, collector_id=1) != wrong


def _submission(msmt: dict[str, object]) -> bytes:
    return orjson.dumps({"format": "json", "content": msmt})


@pytest.mark.parametrize("base", [ours, ooni], ids=["censorprobe", "miniooni"])
def test_real_measurements_are_accepted_with_an_ooni_uid(base: object) -> None:
    (msmt,) = measurements(1, base=base())  # type: ignore[operator]
    sub = protocol.parse_submission(msmt["report_id"], _submission(msmt))
    uid = protocol.measurement_uid(NOW, sub)
    assert UID_RE.match(uid), uid
    assert uid.startswith("20261205101112.345678_")
    assert uid.split("_")[1:3] == [msmt["probe_cc"], msmt["test_name"].replace("_", "")]
    line = protocol.stored_line(sub, uid)
    assert orjson.loads(line) == {**msmt, "measurement_uid": uid}


def test_submission_checks() -> None:
    (msmt,) = measurements(1, base=ooni())
    rid = msmt["report_id"]

    def refused(report_id: str, body: bytes) -> ProtocolError:
        with pytest.raises(ProtocolError) as info:
            protocol.parse_submission(report_id, body)
        return info.value

    assert refused("nope", _submission(msmt)).status == 404
    assert refused(rid, b"{").status == 400
    assert refused(rid, orjson.dumps({"format": "yaml", "content": "x: 1"})).code == (
        "unsupported_format"
    )
    assert (
        "content must be a JSON object"
        in refused(rid, orjson.dumps({"format": "json", "content": json.dumps(msmt)})).message
    )
    other = rid.replace("RrhDWX53xCEpRH8Q", "AAAAAAAAAAAAAAAA")
    assert "differs from the one in the URL" in refused(other, _submission(msmt)).message
    for key, value in (
        ("probe_cc", "FR"),
        ("probe_asn", "AS3215"),
        ("test_name", "signal"),
    ):
        body = _submission({**msmt, key: value})
        assert "differ from its report's" in refused(rid, body).message
    for key in ("test_keys", "measurement_start_time", "software_name"):
        body = _submission({k: v for k, v in msmt.items() if k != key})
        assert refused(rid, body).status == 400
    body = _submission({**msmt, "measurement_start_time": "yesterday"})
    assert "YYYY-MM-DD hh:mm:ss" in refused(rid, body).message


def test_our_own_measurements_get_the_full_typed_model() -> None:
    msmt = ours()
    msmt["test_keys"]["queries"][0]["t0"] = "soon"  # a typed field of df-002
    with pytest.raises(ProtocolError) as info:
        protocol.parse_submission(msmt["report_id"], _submission(msmt))
    assert "queries" in info.value.message
    foreign = {**msmt, "software_name": "someprobe"}  # others' test_keys are not judged
    protocol.parse_submission(msmt["report_id"], _submission(foreign))


@pytest.mark.parametrize("case", ["packet-border-sni-rst", "packet-private-address"])
def test_our_packet_level_traces_are_accepted(case: str) -> None:
    """``probe run --packet-level`` uploads its censor_trace report beside the web one: the
    collector takes those measurements (our own: the full typed model) in a report of their own."""
    msmt = json.loads((GOLDENS / case / "measurement.json").read_text(encoding="utf-8"))
    assert msmt["test_name"] == "censor_trace"
    template = protocol.parse_open(json.dumps(template_of(msmt)).encode())
    report_id = protocol.report_id_for(template, now=NOW, collector_id=1)
    msmt = {**msmt, "report_id": report_id}
    sub = protocol.parse_submission(report_id, _submission(msmt))
    assert protocol.measurement_uid(NOW, sub).split("_")[2] == "censortrace"


def test_digest_ignores_key_order_report_id_and_backend_keys() -> None:
    (msmt,) = measurements(1, base=ooni())
    reordered = dict(reversed(list(msmt.items())))
    relabelled = {**msmt, "report_id": "elsewhere", "measurement_uid": "x"}
    digest = protocol.canonical_digest(msmt)
    assert protocol.canonical_digest(reordered) == digest
    assert protocol.canonical_digest(relabelled) == digest
    assert protocol.canonical_digest({**msmt, "test_runtime": 1.0}) != digest


@given(st.binary(max_size=300))
def test_any_bytes_give_a_protocol_error_or_a_template(body: bytes) -> None:
    try:
        protocol.parse_open(body)
    except ProtocolError as exc:
        assert 400 <= exc.status < 500


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(content=json_values, fmt=st.sampled_from(["json", "yaml", None, 1]))
def test_any_submission_gives_a_protocol_error_or_a_valid_one(content: object, fmt: object) -> None:
    rid = ooni()["report_id"]
    try:
        sub = protocol.parse_submission(rid, orjson.dumps({"format": fmt, "content": content}))
    except ProtocolError as exc:
        assert exc.status in (400, 404)
    else:
        assert sub.content["report_id"] == rid


@given(
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
    cc=st.from_regex(r"[A-Z]{2}", fullmatch=True),
    test=st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True),
    collector=st.integers(0, 9999),
    counter=st.integers(0, 10**9),
    prefix=st.sampled_from(["", "bucket/prefix/", "a/b/c/"]),
)
def test_part_keys_round_trip(
    when: datetime, cc: str, test: str, collector: int, counter: int, prefix: str
) -> None:
    bucket = layout.bucket_of(when, cc, test)
    key = layout.part_key(bucket, collector_id=collector, counter=counter)
    part = layout.parse_part_key(prefix + key)
    assert part is not None
    assert (part.date, part.hour, part.cc, part.test, part.collector, part.counter) == (
        f"{when:%Y%m%d}",
        when.hour,
        cc,
        test,
        collector,
        counter,
    )


def test_part_key_is_oonis_layout() -> None:
    bucket = layout.bucket_of(datetime(2021, 8, 17, 15, 3, tzinfo=UTC), "US", "webconnectivity")
    assert layout.part_key(bucket, collector_id=0, counter=0) == (
        "raw/20210817/15/US/webconnectivity/2021081715_US_webconnectivity.n0.0.jsonl.gz"
    )  # the example of ooni/backend docs/MeasurementUploader.md
    assert layout.parse_part_key("raw/20210817/15/US/webconnectivity/other.jsonl.gz") is None
    assert layout.parse_part_key("raw/20210817/15/US/webconnectivity/x.n0.0.tar.gz") is None
