"""What a dataset holds from a store: ``DIR/_store_state.json``, next to the Parquet tables.

::

    {"version": 1, "store": "s3://probe/collector", "filter": {...},
     "files": {"raw/20261205/10/IT/webconnectivity/....jsonl.gz": 48213, ...},
     "runs": [{"run": 1, "started": "...", "finished": "...", "files": 12, "lines": 3400,
               "measurements": 3400, "malformed": 0, "rules_versions": [...]}],
     "covers": {"first_day": "2026-12-01", "last_day": "2026-12-05", "files": 40,
                "lines": 11000, "countries": ["IT", "RU"], "tests": ["webconnectivity"]},
     "in_progress": null}

A run records itself in ``in_progress`` (its number and the files it reads) before writing any
Parquet file, and clears it in the same atomic write that adds its files: when a run dies in
between, the next one finds ``in_progress``, deletes the files that run wrote (their names
start with ``r<run>-``) and reads its files again. So a part is in the dataset exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from probe.fsutil import write_atomic

NAME = "_store_state.json"
VERSION = 1


class StateError(ValueError):
    """The output holds a dataset of another store or filter (or an unreadable state)."""


@dataclass
class StoreState:
    store: str
    filter: dict[str, Any]
    files: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    covers: dict[str, Any] = field(default_factory=dict)
    in_progress: dict[str, Any] | None = None

    @property
    def next_run(self) -> int:
        numbers = [int(r["run"]) for r in self.runs]
        if self.in_progress is not None:
            numbers.append(int(self.in_progress["run"]))
        return max(numbers, default=0) + 1

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": VERSION,
                "store": self.store,
                "filter": self.filter,
                "files": self.files,
                "runs": self.runs,
                "covers": self.covers,
                "in_progress": self.in_progress,
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )


def load(output: Path, *, store: str, filter: dict[str, Any]) -> StoreState:
    """The dataset's state (a fresh one when there is none). Raises StateError when the dataset
    was made from another store or with another filter: mixing them would make it lie about
    what it covers."""
    path = output / NAME
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        if output.exists() and any(p.name != NAME for p in output.iterdir()):
            raise StateError(
                f"{output} holds something else than a dataset of a store: use an empty folder"
            ) from None
        return StoreState(store=store, filter=filter)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise StateError(f"{path}: not a store state of version {VERSION}")
    if data.get("store") != store or data.get("filter") != filter:
        raise StateError(
            f"{output} covers {data.get('store')} with filter {data.get('filter')}: "
            "analyse another store or filter into another folder"
        )
    return StoreState(
        store=store,
        filter=filter,
        files={str(k): int(v) for k, v in data.get("files", {}).items()},
        runs=list(data.get("runs", [])),
        covers=dict(data.get("covers", {})),
        in_progress=data.get("in_progress"),
    )


def save(output: Path, state: StoreState) -> None:
    write_atomic(output / NAME, state.to_json())
