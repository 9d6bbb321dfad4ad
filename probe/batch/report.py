"""One self-contained HTML report of a batch dataset: inline SVG charts and their tables.

Charts (drawn here as SVG, no chart library, no external resource): anomalies over time per
target and network (``blocking-over-time``), the mix of techniques (``techniques``, anomalies
by ``stage/outcome``) and the stage at which targets fail (``stages``, stacked bars). Each chart
is followed by the table it was drawn from; a short inline script makes tables sortable and
marks the page ``data-ready``. The file opens offline: it references no URL at all.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb

from probe.batch.queries import Filters, run_query

STAGE_COLORS = {
    "dns": "#d95f02",
    "tcp": "#7570b3",
    "tls": "#e7298a",
    "http": "#1b9e77",
    "unknown": "#999999",
}
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
MAX_TABLE_ROWS = 500

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#eee;cursor:pointer}
svg.chart{border:1px solid #ddd;background:#fff}svg text{font-size:11px;fill:#333}
.note{color:#666;font-size:.85em}
"""

_JS = """
document.querySelectorAll("table.data").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var rows = Array.from(table.tBodies[0].rows);
      var asc = th.dataset.asc !== "1"; th.dataset.asc = asc ? "1" : "0";
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
    });
  });
});
document.body.dataset.ready = String(document.querySelectorAll("svg.chart").length);
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], name: str) -> str:
    """An HTML table (first ``MAX_TABLE_ROWS`` rows, with a note when cut)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
        for row in rows[:MAX_TABLE_ROWS]
    )
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        note = (
            f'<p class="note">first {MAX_TABLE_ROWS} of {len(rows)} rows; all of them: '
            f"<code>probe report DIR --query {_e(name)} --format csv</code></p>"
        )
    return (
        f'<table class="data" data-query="{_e(name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{note}"
    )


def _empty_chart(name: str, text: str) -> str:
    return (
        f'<svg class="chart" data-chart="{_e(name)}" width="600" height="60" role="img">'
        f'<text x="10" y="35">{_e(text)}</text></svg>'
    )


def time_chart(rows: Sequence[Sequence[Any]], *, max_series: int = 6) -> str:
    """Anomalies per day, one line per (target, network), the busiest ``max_series`` only."""
    series: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for target, asn, day, _measurements, anomalies in rows:
        key = (str(target), str(asn))
        series[key][day] = int(anomalies)
        totals[key] += int(anomalies)
    chosen = [k for k in sorted(totals, key=lambda k: (-totals[k], k)) if totals[k] > 0]
    chosen = chosen[:max_series]
    if not chosen:
        return _empty_chart("blocking-over-time", "no anomalies in this dataset")
    days = sorted({d for k in chosen for d in series[k]})
    width, height, left, right, top, bottom = 760, 300, 50, 20, 20, 40
    peak = max(max(series[k].values()) for k in chosen) or 1
    span = (days[-1] - days[0]).days or 1

    def x(d: date) -> float:
        return left + (width - left - right) * ((d - days[0]).days / span if len(days) > 1 else 0.5)

    def y(v: int) -> float:
        return top + (height - top - bottom) * (1 - v / peak)

    parts = [
        f'<svg class="chart" data-chart="blocking-over-time" width="{width}" '
        f'height="{height + 20 * len(chosen)}" role="img" aria-label="anomalies over time">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="5" y="{top + 5}">{peak}</text><text x="5" y="{height - bottom}">0</text>',
        f'<text x="{left}" y="{height - bottom + 15}">{days[0].isoformat()}</text>',
        f'<text x="{width - right - 70}" y="{height - bottom + 15}">{days[-1].isoformat()}</text>',
    ]
    for i, key in enumerate(chosen):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        points = sorted(series[key].items())
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in points)
        label = f"{key[0]} {key[1]}"
        parts.append(
            f'<polyline class="series" data-series="{_e(label)}" fill="none" '
            f'stroke="{color}" stroke-width="2" points="{coords}"/>'
        )
        for d, v in points:
            parts.append(
                f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="{color}">'
                f"<title>{_e(label)} {d.isoformat()}: {v}</title></circle>"
            )
        ly = height + 20 * i
        parts.append(
            f'<rect x="{left}" y="{ly - 9}" width="12" height="10" fill="{color}"/>'
            f'<text x="{left + 18}" y="{ly}">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(name: str, items: Sequence[tuple[str, int, str]]) -> str:
    """Horizontal bars: ``(label, value, color)``."""
    if not items:
        return _empty_chart(name, "no anomalies in this dataset")
    width, bar, left = 760, 18, 300
    peak = max(v for _, v, _ in items) or 1
    parts = [
        f'<svg class="chart" data-chart="{_e(name)}" width="{width}" '
        f'height="{len(items) * (bar + 4) + 10}" role="img">'
    ]
    for i, (label, value, color) in enumerate(items):
        yy = 5 + i * (bar + 4)
        w = (width - left - 60) * value / peak
        parts.append(
            f'<text x="5" y="{yy + 13}">{_e(label[:48])}</text>'
            f'<rect class="bar" x="{left}" y="{yy}" width="{w:.1f}" height="{bar}" '
            f'fill="{color}"><title>{_e(label)}: {value}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{yy + 13}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stage_chart(rows: Sequence[Sequence[Any]], *, max_targets: int = 15) -> str:
    """Stacked bars: per target, its anomalies split by the stage that failed."""
    per: dict[str, dict[str, int]] = defaultdict(dict)
    for target, stage, anomalies in rows:
        per[str(target)][str(stage)] = int(anomalies)
    targets = sorted(per, key=lambda t: (-sum(per[t].values()), t))[:max_targets]
    if not targets:
        return _empty_chart("stages", "no anomalies in this dataset")
    width, bar, left = 760, 18, 300
    peak = max(sum(per[t].values()) for t in targets)
    height = len(targets) * (bar + 4) + 40
    parts = [
        f'<svg class="chart" data-chart="stages" width="{width}" height="{height}" role="img">'
    ]
    for i, target in enumerate(targets):
        yy = 5 + i * (bar + 4)
        xx = float(left)
        parts.append(f'<text x="5" y="{yy + 13}">{_e(target[:48])}</text>')
        for stage, color in STAGE_COLORS.items():
            value = per[target].get(stage, 0)
            if not value:
                continue
            w = (width - left - 20) * value / peak
            parts.append(
                f'<rect class="bar" data-stage="{stage}" x="{xx:.1f}" y="{yy}" '
                f'width="{w:.1f}" height="{bar}" fill="{color}">'
                f"<title>{_e(target)} {stage}: {value}</title></rect>"
            )
            xx += w
    ly = height - 12
    for j, (stage, color) in enumerate(STAGE_COLORS.items()):
        parts.append(
            f'<rect x="{left + j * 80}" y="{ly - 9}" width="12" height="10" fill="{color}"/>'
            f'<text x="{left + j * 80 + 16}" y="{ly}">{stage}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def build_report(
    con: duckdb.DuckDBPyConnection, *, title: str, filters: Filters | None = None
) -> str:
    """The whole HTML document for the dataset open in ``con``."""
    filters = filters or Filters()
    sections: list[str] = []

    def section(heading: str, query: str, chart: str | None = None) -> None:
        columns, rows = run_query(con, query, filters)
        sections.append(f"<h2>{_e(heading)}</h2>")
        if chart is not None:
            sections.append(chart)
        sections.append(table_html(columns, rows, query))

    _, counts = run_query(con, "counts", filters)
    total = sum(int(r[2]) for r in counts)
    anomalies = sum(int(r[3]) for r in counts)
    _, over_time = run_query(con, "blocking-over-time", filters)
    section(
        "Anomalies over time, per target and network", "blocking-over-time", time_chart(over_time)
    )
    _, techniques = run_query(con, "techniques", filters)
    mix: dict[str, int] = defaultdict(int)
    stage_of: dict[str, str] = {}
    for _target, stage, outcome, _rule, n, _nets in techniques:
        label = str(outcome or "unknown")
        mix[label] += int(n)
        stage_of[label] = str(stage or "unknown")
    bars = sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    section(
        "Mix of techniques (anomalies by stage/outcome)",
        "techniques",
        bar_chart("techniques", [(k, v, STAGE_COLORS.get(stage_of[k], "#999")) for k, v in bars]),
    )
    _, stages = run_query(con, "stages", filters)
    section("Stage at which targets fail", "stages", stage_chart(stages))
    section("First and last time blocked, per network", "first-last")
    section("Counts and anomaly rates per country and test", "counts")
    section("Verdicts that changed under the current rules", "verdict-changes")
    header = (
        f"<h1>{_e(title)}</h1><p>{total} measurements, {anomalies} anomalies "
        f"({(anomalies / total if total else 0):.1%}).</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + header
        + "".join(sections)
        + f"<script>{_JS}</script></body></html>\n"
    )
