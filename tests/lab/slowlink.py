"""A slow link for every site, for the duration of one test (issue 16: must not be throttling).

:func:`slow_link` caps the default class of the ISP's htb (``tc_isp`` in configs.py: class
``1:10``, where every flow goes that no censor class claims) on both ISP links, and restores
it on the way out, whatever happened. The censor's own classes stay as they were. Runs ``tc``
in cp-isp; the lab must be up (and held under its lock by the caller).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.lab import lab as labmod
from tests.lab import model as m

#: the rate of the default class when no test slows it (tc_isp in configs.py)
NORMAL_RATE = "10gbit"


def _set_rate(rate: str) -> None:
    for dev in (m.ISP_CLIENT_IF, m.ISP_INET_IF):
        labmod.sh(
            "tc", "class", "change", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
            "rate", rate, "ceil", rate, netns=m.NS_ISP,
        )  # fmt: skip


def default_rate() -> str:
    """The rate tc reports for the default class on the client link (e.g. "10Gbit")."""
    out = labmod.sh("tc", "class", "show", "dev", m.ISP_CLIENT_IF, netns=m.NS_ISP).stdout
    for line in out.splitlines():
        if "1:10 " in line and " rate " in line:
            return line.split(" rate ", 1)[1].split()[0]
    raise labmod.LabError(f"no default class 1:10 on {m.ISP_CLIENT_IF}: {out!r}")


@contextmanager
def slow_link(rate: str) -> Iterator[None]:
    """Every site, both ways, at ``rate`` (tc syntax, e.g. "128kbit") inside the block."""
    _set_rate(rate)
    try:
        yield
    finally:
        _set_rate(NORMAL_RATE)
