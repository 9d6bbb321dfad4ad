"""Analysis straight from a collector store: the dataset of the store (a folder, and an S3
bucket) is the volunteer's own dataset; a second run reads only what arrived since the first;
a run that died is undone; a damaged part is reported as a damaged local file is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from probe.cli import main
from probe.collector.layout import part_key
from probe.collector.roller import gzip_lines
from probe.collector.storage import LocalStore, ObjectStore, S3Store
from probe.store.analyze import analyze_store
from probe.store.listing import StoreFilter
from probe.store.state import NAME, StateError
from probe.upload.client import CollectorClient
from probe.upload.outbox import Outbox
from probe.upload.policy import UploadPolicy
from probe.upload.sender import Sender
from tests.unit.collectors import line, measurements, ooni, running_collector, table
from tests.unit.s3server import S3Server, s3_server  # noqa: F401 (the s3 fixture)


async def upload(lines: list[bytes], url: str, tmp: Path) -> None:
    path = tmp / "outbox.sqlite3"
    with Outbox(path) as outbox:
        outbox.add(lines)
    policy = UploadPolicy(max_failures=2, base_delay=0.01)
    async with CollectorClient(url, policy=policy) as client:
        result = await Sender(path, client, policy=policy).drain()
    assert result.waiting == 0 and result.uploaded == len(lines)


def analyze(
    source: str, out: Path, *options: str, capsys: pytest.CaptureFixture[str] | None = None
) -> dict[str, Any]:
    """``probe analyze SOURCE --output OUT --format json`` in this process: what it printed."""
    if capsys is not None:
        capsys.readouterr()
    args = ["analyze", source, "--output", str(out), "--workers", "0", "--format", "json"]
    assert main([*args, *options]) == 0
    if capsys is None:
        return {}
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


async def test_the_store_gives_the_volunteers_dataset(
    tmp_path: Path,
    s3: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`probe analyze` on the volunteer's file, on the store's folder and on its bucket."""
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    lines = [line(m) for m in measurements(25)]
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"".join(lines))
    analyze(str(results), tmp_path / "local")

    async with running_collector(tmp_path / "store") as running:
        await upload(lines, running.urls[0], tmp_path / "a")
        await running.roller.roll_now()
    folder = analyze(str(tmp_path / "store"), tmp_path / "from-folder", capsys=capsys)

    s3_options = ("--s3-endpoint", s3.endpoint, "--journal", str(tmp_path / "journal.db"))
    async with running_collector(f"s3://{s3.bucket}/same", *s3_options) as running:
        await upload(lines, running.urls[0], tmp_path / "b")
        await running.roller.roll_now()
    bucket = analyze(
        f"s3://{s3.bucket}/same", tmp_path / "from-s3", "--s3-endpoint", s3.endpoint, capsys=capsys
    )

    assert folder["run"] == bucket["run"] == 1
    assert folder["summary"]["measurements"] == bucket["summary"]["measurements"] == 25
    assert folder["covers"]["countries"] == ["ZZ"] == bucket["covers"]["countries"]
    for name in ("measurements", "observations"):
        local = table(tmp_path / "local", name)
        assert table(tmp_path / "from-folder", name) == local
        assert table(tmp_path / "from-s3", name) == local
    uids = {
        r["measurement_uid"]
        for r in table(tmp_path / "from-s3", "measurements", keep_provenance=True)
    }
    assert len(uids) == 25 and None not in uids


async def test_second_run_reads_only_the_new_parts(tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "dataset"
    first = [line(m) for m in measurements(10)]
    second = [line(m) for m in measurements(6, base=ooni(), tag="b")]
    async with running_collector(store) as running:
        await upload(first, running.urls[0], tmp_path / "1")
        await running.roller.roll_now()
        one = analyze_store(str(store), out, workers=0)
        assert (one.run, one.new_files, one.known_files) == (1, 1, 0)
        await upload(second, running.urls[0], tmp_path / "2")
        await running.roller.roll_now()
    two = analyze_store(str(store), out, workers=0)
    assert (two.run, two.new_files, two.known_files) == (2, 1, 1)
    assert two.summary is not None and two.summary.lines == 6  # only the new part was read
    three = analyze_store(str(store), out, workers=0)
    assert (three.run, three.new_files, three.summary) == (None, 0, None)
    rows = table(out, "measurements")
    assert len(rows) == 16
    assert sorted(p.name.split("-")[0] for p in (out / "measurements").rglob("*.parquet")) == (
        ["r1"] * len(list((out / "measurements").rglob("r1-*.parquet")))
        + ["r2"] * len(list((out / "measurements").rglob("r2-*.parquet")))
    )
    covers = two.state.covers
    assert covers["files"] == 2 and covers["measurements"] == 16
    assert covers["countries"] == ["IT", "ZZ"] and covers["tests"] == ["webconnectivity"]
    assert [r["run"] for r in two.state.runs] == [1, 2]
    # the dataset is bound to its store and filter
    with pytest.raises(StateError, match="covers"):
        analyze_store(str(store), out, filt=StoreFilter.of(countries=["IT"]), workers=0)
    only_it = analyze_store(
        str(store), tmp_path / "it", filt=StoreFilter.of(countries=["it"]), workers=0
    )
    assert only_it.summary is not None and only_it.summary.lines == 6
    none = analyze_store(
        str(store), tmp_path / "none", filt=StoreFilter.of(tests=["telegram"]), workers=0
    )
    assert none.new_files == 0


async def test_a_run_that_died_is_undone(tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "dataset"
    async with running_collector(store) as running:
        await upload([line(m) for m in measurements(5)], running.urls[0], tmp_path / "1")
        await running.roller.roll_now()
        first = analyze_store(str(store), out, workers=0)
        await upload([line(m) for m in measurements(3, tag="n")], running.urls[0], tmp_path / "2")
        new = await running.roller.roll_now()
    # run 2 died after writing a Parquet file and before recording its part
    state = first.state
    state.in_progress = {"run": 2, "started": "x", "files": new}
    (out / NAME).write_bytes(state.to_json())
    written = next((out / "measurements").rglob("r1-*.parquet"))
    ghost = written.with_name("r2-0.parquet")
    ghost.write_bytes(written.read_bytes())  # the rows of run 1 again, under run 2's name
    again = analyze_store(str(store), out, workers=0)
    assert (again.run, again.new_files, again.known_files) == (2, 1, 1)
    assert len(table(out, "measurements")) == 8  # each measurement once
    assert again.state.in_progress is None


def test_an_unrelated_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(StateError, match="use an empty folder"):
        analyze_store(str(tmp_path / "store"), tmp_path / "out", store=LocalStore(tmp_path))


def test_store_options_belong_to_the_store_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every store option is refused where it means nothing (one line, exit 2)."""
    (tmp_path / "store" / "raw").mkdir(parents=True)
    results = tmp_path / "results.jsonl"
    results.write_bytes(line(measurements(1)[0]))
    out = str(tmp_path / "out")
    for argv, needle in (
        ([str(results), "--output", out, "--since", "2026-01-01"], "--since is for a collector"),
        (["--stdin", "--cc", "IT"], "--cc is for a collector store"),
        ([str(results), "--output", out, "--s3-anonymous"], "--s3-anonymous is for"),
        ([str(tmp_path / "store"), str(results), "--output", out], "analysed alone"),
        ([str(tmp_path / "store")], "--output DIR is required with a store"),
        ([str(tmp_path / "store"), "--output", out, "--until", "May"], "--until must be"),
        (["s3://bucket/x", "--output", out, "--s3-endpoint", "ftp://x"], "--s3-endpoint must"),
    ):
        capsys.readouterr()
        assert main(["analyze", *argv]) == 2, argv
        errors = [x for x in capsys.readouterr().err.splitlines() if "warning" not in x]
        assert len(errors) == 1 and needle in errors[0], (argv, errors)
    # an empty store: nothing new, and the table form says what the dataset covers
    assert main(["analyze", str(tmp_path / "store"), "--output", out, "--format", "table"]) == 0
    printed = capsys.readouterr().out
    assert "nothing new in" in printed and "the dataset covers 0 parts" in printed


@pytest.mark.parametrize("where", ["folder", "bucket"])
def test_a_damaged_part_is_reported_and_the_run_goes_on(
    where: str,
    tmp_path: Path,
    s3: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A part cut off in its second gzip member, and one that is not gzip at all: the whole
    lines before the damage are analysed, each damaged part is reported once (a warning and
    ``kind: unreadable`` with its uncompressed offset), the other parts are read and every part
    counts as read. From a bucket too: its parts are read forward only (an S3 stream cannot
    seek back to the gzip magic)."""
    store: ObjectStore
    if where == "folder":
        store, url, options = LocalStore(tmp_path / "store"), str(tmp_path / "store"), ()
    else:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        store = S3Store(s3.bucket, "damaged", s3.settings())
        url, options = f"s3://{s3.bucket}/damaged", ("--s3-endpoint", s3.endpoint)
    good = [line(m) for m in measurements(4, tag="g")]
    kept = [line(m) for m in measurements(3, tag="k")]
    lost = [line(m) for m in measurements(3, tag="l")]
    keys = [part_key("2026010112/IT/webconnectivity", collector_id=1, counter=n) for n in (1, 2, 3)]
    store.put(keys[0], gzip_lines(good))
    store.put(keys[1], gzip_lines(kept) + gzip_lines(lost)[:12])  # a header, then nothing whole
    store.put(keys[2], b"not gzip at all\n")
    printed = analyze(url, tmp_path / "out", *options, capsys=capsys)
    summary = printed["summary"]
    assert (printed["run"], printed["new_files"]) == (1, 3)
    assert summary["measurements"] == len(good) + len(kept)
    damaged = {m["file"]: m for m in summary["malformed"] if m["kind"] == "unreadable"}
    assert set(damaged) == {keys[1], keys[2]}
    assert damaged[keys[1]]["line"] == len(kept)
    assert damaged[keys[1]]["detail"] == (
        f"gzip stream cut off (no end-of-stream marker) at uncompressed offset "
        f"{len(b''.join(kept))} (after line {len(kept)})"
    )
    assert damaged[keys[2]]["detail"].startswith("not a gzip file at uncompressed offset 0")
    again = analyze(url, tmp_path / "out", *options, capsys=capsys)
    assert (again["run"], again["new_files"], again["known_files"]) == (None, 0, 3)


def test_damaged_parts_are_warnings_of_the_store_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    key = part_key("2026010112/IT/webconnectivity", collector_id=1, counter=1)
    store.put(key, gzip_lines([line(m) for m in measurements(2)])[:-9])
    capsys.readouterr()
    argv = ["analyze", str(tmp_path / "store"), "--output", str(tmp_path / "out"), "--workers"]
    assert main([*argv, "0"]) == 0
    warnings = [x for x in capsys.readouterr().err.splitlines() if key in x]
    assert len(warnings) == 1 and "probe analyze: warning:" in warnings[0], warnings
    assert "gzip stream cut off" in warnings[0] and "going on" in warnings[0]
