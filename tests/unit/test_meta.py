"""probe.meta: OONI time stamps, report ids, measurement ids, annotations."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probe import SOFTWARE_NAME, __version__
from probe.meta import (
    COLLECTOR_ID,
    asn_digits,
    format_time,
    make_annotations,
    make_report_id,
    measurement_id,
    ooni_architecture,
    ooni_platform,
    parse_time,
)

#: ooni-format.md 2.2, modern form
REPORT_ID = re.compile(r"^\d{8}T\d{6}Z_[a-z0-9]+_[A-Z]{2}_\d{1,10}_n\d+_[A-Za-z0-9]{16}$")


def test_format_time_is_utc_without_fraction() -> None:
    when = datetime(2022, 11, 9, 23, 57, 26, 987654, tzinfo=timezone(timedelta(hours=3)))
    assert format_time(when) == "2022-11-09 20:57:26"
    assert format_time(datetime(2024, 2, 29, 0, 0, 1)) == "2024-02-29 00:00:01"  # naive = UTC


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    )
)
def test_parse_time_inverts_format_time(when: datetime) -> None:
    assert parse_time(format_time(when)) == when.replace(microsecond=0)


def test_parse_time_rejects_iso_8601() -> None:
    with pytest.raises(ValueError):
        parse_time("2024-02-12T20:33:47Z")


def test_report_id_has_the_modern_ooni_form() -> None:
    now = datetime(2022, 11, 9, 22, 57, 26, tzinfo=UTC)
    rid = make_report_id(test_name="telegram", cc="RU", asn="AS8402", now=now, rng=random.Random(1))
    assert REPORT_ID.match(rid), rid
    assert rid.startswith(f"20221109T225726Z_telegram_RU_8402_{COLLECTOR_ID}_")
    rid = make_report_id(
        test_name="web_connectivity", cc="ZZ", asn=0, now=now, rng=random.Random(1)
    )
    assert rid.startswith("20221109T225726Z_webconnectivity_ZZ_0_n0_")


def test_report_id_tail_is_random_and_reproducible_with_a_seed() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)

    def rid(seed: int) -> str:
        return make_report_id(
            test_name="signal", cc="IT", asn=30722, now=now, rng=random.Random(seed)
        )

    assert rid(1) == rid(1)
    assert len({rid(seed) for seed in range(50)}) == 50


@given(st.integers(min_value=0, max_value=2**32))
def test_report_id_tail_is_alphanumeric(seed: int) -> None:
    rid = make_report_id(
        test_name="whatsapp",
        cc="IR",
        asn="AS44244",
        now=datetime(2025, 1, 1, tzinfo=UTC),
        rng=random.Random(seed),
    )
    assert REPORT_ID.match(rid), rid


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cc": "ru"}, "country"),
        ({"cc": "RUS"}, "country"),
        ({"asn": "ASX"}, "AS number"),
        ({"asn": "-1"}, "AS number"),
        ({"test_name": "Web Connectivity"}, "test name"),
    ],
)
def test_report_id_rejects_bad_parts(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "test_name": "telegram",
        "cc": "RU",
        "asn": "AS8402",
        "now": datetime(2025, 1, 1, tzinfo=UTC),
        "rng": random.Random(1),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        make_report_id(**args)  # type: ignore[arg-type]


def test_asn_digits() -> None:
    assert asn_digits("AS8402") == "8402"
    assert asn_digits("as0") == "0"
    assert asn_digits(13335) == "13335"
    assert asn_digits("0042") == "42"


def test_measurement_id_is_a_fresh_uuid4() -> None:
    a, b = measurement_id(), measurement_id()
    assert a != b
    assert uuid.UUID(a).version == 4


def test_annotations_are_strings_in_ooni_vocabulary() -> None:
    ann = make_annotations()
    assert ann["engine_name"] == SOFTWARE_NAME
    assert ann["engine_version"] == __version__
    assert ann["platform"] in {"linux", "macos", "windows", "freebsd", "openbsd", "android"}
    assert ann["architecture"] == ooni_architecture() != ""
    assert all(isinstance(v, str) for v in ann.values())


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("aarch64", "arm64"),
        ("i686", "386"),
        ("armv7l", "arm"),
        ("riscv64", "riscv64"),
    ],
)
def test_architecture_uses_go_names(machine: str, arch: str) -> None:
    assert ooni_architecture(machine) == arch


@pytest.mark.parametrize(
    ("name", "platform"),
    [("linux", "linux"), ("darwin", "macos"), ("win32", "windows"), ("freebsd14", "freebsd")],
)
def test_platform_uses_ooni_names(name: str, platform: str) -> None:
    assert ooni_platform(name) == platform
