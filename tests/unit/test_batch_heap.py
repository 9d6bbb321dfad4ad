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
sizes = [int(s) for s in sys.argv[2].split(",")]
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


#: a read block, a chunk, a large result: the batch's kinds of blocks
BATCH_BLOCKS = (1 << 20, 8 << 20, 40 << 20)


def _faults(mode: str, sizes: tuple[int, ...] = BATCH_BLOCKS) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode, ",".join(map(str, sizes))],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_large_blocks_are_reused_instead_of_mapped_again() -> None:
    pages = (40 << 20) // 4096
    assert _faults("default") > 5 * pages  # the 40 MiB block is mapped and faulted in anew
    assert _faults("tuned") < pages // 10  # the same memory, already there


def test_blocks_above_the_threshold_are_not_kept() -> None:
    """The memory kept is bounded: a block larger than the mmap threshold is still mapped for
    each use and given back when freed, tuned or not (ten rounds fault it in ten times)."""
    size = heap.MMAP_THRESHOLD + (16 << 20)
    pages = size // 4096
    assert _faults("tuned", (size,)) > 5 * pages
