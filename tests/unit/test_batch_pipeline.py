"""The whole batch: real data in, Parquet out; pool and Dask agree; queries; the HTML report."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from probe.analysis.fingerprints import builtin
from probe.batch.pipeline import run
from probe.batch.queries import QUERIES, Filters, open_dataset, render, run_query
from probe.batch.report import build_report
from probe.batch.step import StepOptions
from probe.cli import main
from tests import system

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
INPUTS = [SHARED / "ooni-samples", SHARED / "ooni-qa"]


def _tables(root: Path) -> dict[str, object]:
    return {
        path.relative_to(root).as_posix(): pq.read_table(path)
        for path in sorted(root.glob("*/**/*.parquet"))
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "out"
    run(INPUTS, out, workers=0, max_lines=7)
    return out


def test_every_real_file_is_read_and_problems_reported(dataset: Path) -> None:
    import json

    summary = json.loads((dataset / "_summary.json").read_text())
    assert summary["lines"] == summary["measurements"] + summary["malformed_count"]
    assert {
        "file": "ooni-samples/edge-cases/synthetic-broken-web_connectivity.jsonl",
        "line": 9,
        "kind": "json",
    }.items() <= next(m for m in summary["malformed"] if m["kind"] == "json").items()
    assert summary["measurements"] >= 90
    con = open_dataset(dataset)
    (n,) = con.execute(
        "SELECT count(*) FROM measurements WHERE test_name = 'web_connectivity'"
    ).fetchone()
    assert n >= 75


def test_pool_and_dask_give_identical_datasets(tmp_path: Path) -> None:
    from distributed import LocalCluster

    # with the fingerprints `probe analyze` uses: they travel to the workers by pickle
    options = StepOptions(fingerprints=builtin())
    run(INPUTS, tmp_path / "serial", workers=0, max_lines=7, options=options)
    run(INPUTS, tmp_path / "pool", workers=2, max_lines=7, options=options)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        scheduler_kwargs={"protocol": "tcp://", "host": "127.0.0.1"},
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        run(INPUTS, tmp_path / "dask", scheduler=address, max_lines=7, options=options)
    serial, pool = _tables(tmp_path / "serial"), _tables(tmp_path / "pool")
    dask = _tables(tmp_path / "dask")
    assert serial.keys() == pool.keys() == dask.keys()
    assert len(serial) > 20
    for name, table in serial.items():
        assert table.equals(pool[name]), name
        assert table.equals(dask[name]), name


def test_queries_render_in_three_formats(dataset: Path) -> None:
    con = open_dataset(dataset)
    for name in QUERIES:
        columns, rows = run_query(con, name)
        assert columns
        for fmt in ("table", "csv", "json"):
            assert render(columns, rows, fmt)
    columns, rows = run_query(con, "first-last", Filters(cc="RU"))
    assert {r[0] for r in rows} >= {"http://rutor.org/", "telegram", "facebook_messenger"}
    _, rows = run_query(con, "techniques", Filters(target="signal"))
    assert ("signal", "dns", "dns/nxdomain") in {r[:3] for r in rows}


def test_cli_report_query_and_errors(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(dataset), "--query", "counts", "--format", "csv", "--cc", "IR"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("probe_cc,test_name,measurements")
    assert all(line.startswith("IR,") for line in out[1:]) and len(out) > 1
    assert main(["report", str(dataset / "nope"), "--query", "counts"]) == 2
    assert "probe report: error:" in capsys.readouterr().err


def test_html_report_charts_render_in_chromium(dataset: Path, tmp_path: Path) -> None:
    system.require("chromium")
    page = tmp_path / "report.html"
    page.write_text(build_report(open_dataset(dataset), title="Test report"))
    text = page.read_text()
    assert "http://" not in text.replace("http://rutor", "").split("<h2>")[0]
    assert "<script src" not in text and "<link" not in text
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                "/usr/bin/chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    dom = done.stdout
    assert 'data-ready="3"' in dom  # the inline script ran and counted three charts
    for chart in ("blocking-over-time", "techniques", "stages"):
        assert f'data-chart="{chart}"' in dom
    assert dom.count('class="series"') >= 1
    assert dom.count('class="bar"') >= 2


def test_progress_is_reported_while_the_run_goes_on(tmp_path: Path) -> None:
    from probe.batch.pipeline import progress_line

    seen: list[tuple[int, float]] = []
    summary = run(
        INPUTS,
        tmp_path / "out",
        workers=0,
        max_lines=7,
        progress=lambda s, elapsed: seen.append((s.lines, elapsed)),
        progress_every=0.0,
    )
    assert len(seen) >= 10  # one per chunk with progress_every=0
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)
    assert seen[-1][0] == summary.lines
    line = progress_line(summary, 2.0)
    assert line.startswith(f"analyzed {summary.lines:,} records (") and "malformed" in line
