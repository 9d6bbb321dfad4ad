"""The batch processes keep large freed blocks: reusing one does not fault in new pages."""

from __future__ import annotations

import subprocess
import sys

from probe.batch import heap

#: page faults of ten rounds of the batch's kinds of blocks, after a first round
_FAULTS = """
import resource, sys
from probe.batch.heap import keep_large_blocks
if sys.argv[1] == "tuned":
    assert keep_large_blocks()
sizes = [1 << 20, 8 << 20, 40 << 20]  # a read block, a chunk, a large result
def cycle():
    for size in sizes:
        b"x" * size  # malloc, every page written, then freed
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
cycle()
before = faults()
for _ in range(10):
    cycle()
print(faults() - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], check=True, capture_output=True, text=True
    )
    return int(done.stdout)


def test_large_blocks_are_reused_instead_of_mapped_again() -> None:
    pages = (40 << 20) // 4096
    assert _faults("default") > 5 * pages  # the 40 MiB block is mapped and faulted in anew
    assert _faults("tuned") < pages // 10  # the same memory, already there


def test_the_thresholds_bound_what_is_kept() -> None:
    assert 40 << 20 < heap.MMAP_THRESHOLD <= heap.TRIM_THRESHOLD <= 256 << 20
