"""The collector with its store on a real S3-compatible object store (SeaweedFS on 127.0.0.1):
the same parts, in the same layout, as on a local folder."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from probe.collector import layout
from probe.collector.storage import S3Store, StoreError, open_store
from tests.unit.collectors import measurements, ooni, open_report, read_store, running_collector
from tests.unit.s3server import S3Server, s3_server  # noqa: F401 (the s3 fixture)


async def test_parts_land_on_s3_in_oonis_layout(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    url = f"s3://{s3.bucket}/spec"
    options = ("--s3-endpoint", s3.endpoint, "--journal", str(tmp_path / "journal.db"))
    uids = set()
    async with running_collector(url, *options) as running:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            for base in (ooni(), measurements(1)[0]):
                rid = await open_report(client, running.urls[0], base)
                for msmt in measurements(3, base=base, report_id=rid):
                    body = orjson.dumps({"format": "json", "content": msmt})
                    resp = await client.post(f"{running.urls[0]}/report/{rid}", content=body)
                    assert resp.status_code == 200
                    uids.add(resp.json()["measurement_uid"])
        keys = await running.roller.roll_now()
    store = S3Store(s3.bucket, "spec", s3.settings())
    listed = [info.key for info in store.list("raw")]
    assert sorted(keys) == listed and len(listed) == 2
    assert all(layout.parse_part_key(key) is not None for key in listed)
    assert {m["measurement_uid"] for m in read_store(store)} == uids


def test_s3_urls_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StoreError, match="credentials missing"):
        open_store("s3://bucket/prefix")
    with pytest.raises(StoreError, match="not an S3 URL"):
        open_store("s3:///prefix")
    with pytest.raises(StoreError, match="unknown store"):
        open_store("gs://bucket")
    assert open_store("file:///tmp/x").url == "/tmp/x"
