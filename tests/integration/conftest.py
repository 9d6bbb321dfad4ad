"""Probe-in-the-lab fixtures: one lab per session, commands run inside cp-client.

``lab`` gives the lab facts (resolver, ca_file, control_url, public_ranges, targets, ...),
``run_in_client(*argv)`` runs a command in the volunteer's namespace, ``run_in_inet`` in the
control vantage's. The code is shared with tests/lab (tests/lab/fixtures.py).

``lab_report(text)`` keeps a verdict table for the end of the run: the terminal summary prints
the web and app confusion tables even when pytest captures output (CI logs show them).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.lab.fixtures import lab, run_in_client, run_in_inet  # noqa: F401

_REPORTS = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def lab_report(pytestconfig: pytest.Config) -> Callable[[str], None]:
    reports = pytestconfig.stash.setdefault(_REPORTS, [])
    return reports.append


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    for text in config.stash.get(_REPORTS, []):
        terminalreporter.section("censorship lab: verdicts")
        terminalreporter.write_line(text)
