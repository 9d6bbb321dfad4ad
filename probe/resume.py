"""``probe run --resume FILE``: repair the file, continue its report, and say how to resume.

Before a resumed run measures anything, :func:`continue_report` repairs a cut-off last line
(:func:`probe.writer.repair` moves it into ``FILE.torn``; its target is measured again) and
makes the session write into the file's own report: the ``report_id`` and ``test_start_time``
of its first measurement, so one file never holds two reports. A file measured with another test
or from another network (the published country or ASN differs) is refused: those measurements
belong in a new report.

:func:`write_error_line` is the one line a run that hit a write error ends with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from probe.writer import WriteError, read_resume_state, repair

if TYPE_CHECKING:
    from probe.session import Session


class ResumeRefused(Exception):
    """The file holds another report's measurements; ``str()`` is the one line to print."""


def continue_report(session: Session, output: Path) -> Session:
    """The session that continues the report in ``output`` (repaired first); ResumeRefused
    when the file belongs to another test or network."""
    fixed = repair(output)
    if fixed.moved:
        print(
            f"probe run: moved a cut-off last line ({fixed.moved} bytes) of {output} to "
            f"{fixed.side_file}; its target is measured again",
            file=sys.stderr,
        )
    state = read_resume_state(output)
    if not state.report_id:
        return session
    ours = {
        "test_name": _report_test(session.report_id),
        "probe_cc": session.config.probe_cc if session.config.privacy.include_cc else "ZZ",
        "probe_asn": session.config.probe_asn if session.config.privacy.include_asn else "AS0",
    }
    theirs = {
        "test_name": _report_test(state.report_id),
        "probe_cc": state.probe_cc,
        "probe_asn": state.probe_asn,
    }
    for key, value in ours.items():
        if theirs[key] and value != theirs[key]:
            raise ResumeRefused(
                f"--resume {output}: its report was measured with {key} {theirs[key]}, this run "
                f"has {value}; write to a new file with --output"
            )
    started = state.test_start_time or session.ctx.test_start_time
    return session.continuing(state.report_id, started)


def _report_test(report_id: str) -> str:
    """The test part of a report id (``20240101T000000Z_webconnectivity_RU_...``)."""
    parts = report_id.split("_")
    return parts[1] if len(parts) > 1 else ""


def write_error_line(error: WriteError) -> str:
    """One line: what failed, how many measurements are safe, how to go on."""
    return (
        f"probe run: error: {error}; {error.safe_lines} measurement"
        f"{'' if error.safe_lines == 1 else 's'} are safe in {error.path} (it ends on a whole "
        f"line); free some space, then run the same command with --resume {error.path} to "
        "measure the rest"
    )
