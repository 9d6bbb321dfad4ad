"""The runner: bounded concurrency, whole lines, resume, failures recorded, streaming input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from probe.runner import Stats, read_done_inputs, run_targets
from probe.targets import BadLine, Target, read_urls


class ListSink:
    def __init__(self) -> None:
        self.events: list[str] = []

    def bad_line(self, bad: BadLine) -> None:
        self.events.append(f"bad {bad}")

    def started(self, total: int | None) -> None:
        self.events.append(f"start {total}")

    def finished(self, row: Any, stats: Stats) -> None:
        self.events.append(f"done {row.url}")

    def interrupted(self) -> None:
        self.events.append("interrupted")

    def close(self) -> None:
        self.events.append("close")


def _msmt(url: str, blocking: object = False) -> dict[str, Any]:
    return {
        "input": url,
        "test_name": "web_connectivity",
        "test_keys": {"blocking": blocking, "accessible": blocking is False},
    }


async def test_concurrency_is_bounded_and_every_target_written_once(tmp_path: Path) -> None:
    in_flight = 0
    peak = 0

    async def measure(target: Target, release: Any) -> dict[str, Any]:
        url = target.url
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(0.01)
        in_flight -= 1
        return _msmt(url, "dns" if url.split(".")[0].endswith("3") else False)

    urls = [f"https://s{i}.test/" for i in range(40)]
    out = tmp_path / "o.jsonl"
    sink = ListSink()
    stats = await run_targets(
        read_urls(urls + urls[:5] + ["nope"]),
        measure=measure,
        output=out,
        concurrency=7,
        sink=sink,
    )
    assert peak == 7
    lines = out.read_text().splitlines()
    assert sorted(json.loads(x)["input"] for x in lines) == sorted(urls)
    assert stats.done == 40 and stats.bad_lines == 1
    assert stats.blocked == 4  # s3, s13, s23, s33
    assert sink.events[0] == "start None" and sink.events[-1] == "close"


async def test_exception_in_a_target_is_recorded_and_run_goes_on(tmp_path: Path) -> None:
    async def measure(target: Target, release: Any) -> dict[str, Any]:
        url = target.url
        if "boom" in url:
            raise RuntimeError("exploded near 198.18.0.7")
        return _msmt(url)

    out = tmp_path / "o.jsonl"
    stats = await run_targets(
        read_urls(["https://boom.test/", "https://fine.test/"]),
        measure=measure,
        output=out,
        concurrency=2,
        sink=ListSink(),
    )
    rows = {json.loads(x)["input"]: json.loads(x) for x in out.read_text().splitlines()}
    assert stats.done == 2
    failure = rows["https://boom.test/"]["test_keys"]["x_failure"]
    assert failure.startswith("unknown_failure: ") and "198.18.0.7" not in failure


async def test_a_failed_target_is_written_by_on_error_from_the_target(tmp_path: Path) -> None:
    """``on_error`` gets the Target, as ``measure`` does: the failed measurement keeps what
    the session records about the input (here: credentials removed before measuring)."""
    seen: list[Target] = []

    async def measure(target: Target, release: Any) -> dict[str, Any]:
        raise RuntimeError("exploded")

    def on_error(target: Target, exc: Exception) -> dict[str, Any]:
        seen.append(target)
        return {"input": target.url, "test_keys": {"x_input": target.notes, "x_failure": "x"}}

    out = tmp_path / "o.jsonl"
    await run_targets(
        read_urls(["https://u:p@boom.test/"]),
        measure=measure,
        output=out,
        concurrency=1,
        sink=ListSink(),
        on_error=on_error,
    )
    assert [t.url for t in seen] == ["https://boom.test/"] and seen[0].credentials_removed
    line = json.loads(out.read_text())
    assert line["test_keys"]["x_input"] == {"credentials_removed": True}


async def test_resume_measures_only_missing_targets(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    urls = [f"https://r{i}.test/" for i in range(6)]
    out.write_text(
        "".join(json.dumps(_msmt(u)) + "\n" for u in urls[:4]) + '{"input": "https://r5.te',
        encoding="utf-8",
    )
    measured: list[str] = []

    async def measure(target: Target, release: Any) -> dict[str, Any]:
        url = target.url
        measured.append(url)
        return _msmt(url)

    done = read_done_inputs(out)
    assert done == set(urls[:4])
    stats = await run_targets(
        read_urls(urls),
        measure=measure,
        output=out,
        concurrency=3,
        sink=ListSink(),
        done_inputs=done,
    )
    assert sorted(measured) == urls[4:]
    assert stats.skipped_resume == 4


async def test_input_is_streamed_not_read_ahead(tmp_path: Path) -> None:
    """The producer pulls a target only when a slot is free."""
    pulled = 0

    def items() -> Iterator[Target]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield Target(url=f"https://t{i}.test/")

    gate = trio.Event()
    seen_pulled: list[int] = []

    async def measure(target: Target, release: Any) -> dict[str, Any]:
        url = target.url
        if url == "https://t0.test/":
            await trio.sleep(0.05)
            seen_pulled.append(pulled)
            gate.set()
        await gate.wait()
        return _msmt(url)

    await run_targets(
        items(), measure=measure, output=tmp_path / "o.jsonl", concurrency=4, sink=ListSink()
    )
    assert seen_pulled[0] <= 5  # 4 slots + the one waiting for a slot
