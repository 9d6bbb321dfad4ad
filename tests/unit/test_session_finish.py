"""``Session.finish``: the input notes, the published copy (probe.privacy), then the verdict keys
of the registry's analysis computed from exactly that copy (recomputable from the line)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from probe.analysis.fingerprints import builtin
from probe.config import Config
from probe.session import Session
from tests.goldens import tiers
from tests.hostile.context import run_context

VOLUNTEER = "203.0.113.7"
LAB = (ipaddress.ip_network("198.18.0.0/15"),)


def _facts(case: str) -> dict[str, Any]:
    """A lab golden's measurement without its verdict keys (what the orchestrator returns)."""
    directory = tiers.GOLDENS / "lab" / case
    msmt: dict[str, Any] = json.loads((directory / tiers.MEASUREMENT).read_text())
    for key in json.loads((directory / tiers.VERDICT).read_text()):
        msmt["test_keys"].pop(key, None)
    return msmt


def test_finish_publishes_first_then_analyses_the_published_copy() -> None:
    ctx = run_context(Config(public_ranges=LAB))  # the lab's run
    session = Session(ctx=ctx, fingerprints=builtin(), probe_ips=(VOLUNTEER,))
    msmt = _facts("http-tproxy-blockpage")
    response = msmt["test_keys"]["requests"][0]["response"]
    response["body"] += f"<p>your address: {VOLUNTEER}</p>"
    notes = {"given": "http://TPROXY-blockpage.lab.test/"}

    published = session.finish(msmt, notes=notes)

    assert VOLUNTEER not in json.dumps(published)
    tk = published["test_keys"]
    assert tk["x_input"] == notes
    assert tk["x_outcome"] and tk["x_rule_id"]
    # the verdict keys are exactly the analysis of the line as written
    facts = json.loads(json.dumps(published))
    verdict = tiers.verdict(facts)
    for key in verdict:
        facts["test_keys"].pop(key, None)
    assert tiers.verdict(facts) == {k: tk[k] for k in verdict}
    assert "x_outcome" not in msmt["test_keys"]  # the facts given are not the published copy
