"""The roller against a store that fails: acknowledgements go on, nothing is lost, the failure
is reported, and the parts appear once the store is back (a crash-safe roll, redone whole)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from probe.collector.journal import Entry, Journal
from probe.collector.roller import Roller, RollPolicy
from probe.collector.storage import LocalStore
from tests.unit.collectors import read_store_lines


class FlakyStore(LocalStore):
    """A local store whose ``put`` fails while ``down`` (after ``ok_puts`` successes)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.down = True
        self.ok_puts = 1

    def put(self, key: str, data: bytes) -> None:
        if self.down:
            if self.ok_puts <= 0:
                raise OSError("store unreachable")
            self.ok_puts -= 1
        super().put(key, data)


def _entries(n: int, *, offset: int = 0) -> list[Entry]:
    out = []
    for i in range(offset, offset + n):
        cc = "IT" if i % 2 else "RU"
        line = b'{"i":%d,"probe_cc":"%s"}\n' % (i, cc.encode())
        out.append(Entry(bytes([i % 256, i // 256]) * 32, f"uid{i}", f"2026120510/{cc}/x", line))
    return out


async def test_a_store_that_fails_mid_roll(tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.sqlite3"
    journal = Journal(journal_path)
    journal.append(_entries(10), received=1.0)
    store = FlakyStore(tmp_path / "store")
    events: list[dict[str, Any]] = []
    roller = Roller(
        journal_path,
        store,
        collector_id=1,
        policy=RollPolicy(max_age=0.0, check_every=0.01),
        events=events.append,
    )
    with trio.move_on_after(0.3):
        await roller.run()
    # one of the roll's two parts was written, then the store failed: the roll is not done
    assert any(e["event"] == "roll_failed" for e in events)
    assert journal.backlog().rows == 10 and journal.unfinished_roll()
    journal.append(_entries(4, offset=10), received=2.0)  # acknowledgements go on
    store.down = False
    with trio.move_on_after(0.3):
        await roller.run()
    keys = await roller.roll_now()
    assert keys == [] and journal.backlog().rows == 0 and not journal.unfinished_roll()
    lines = read_store_lines(tmp_path / "store")
    assert sorted(m["i"] for m in lines) == list(range(14))  # each once: the redo overwrote
    assert [e["event"] for e in events][-2:] == ["rolled", "rolled"]
    roller.close()
    journal.close()
