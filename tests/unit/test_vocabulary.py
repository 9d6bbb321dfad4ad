"""One vocabulary: every failure and outcome word is spelled in probe/vocabulary.py only, and
each word has one meaning across the web and app verdicts."""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from probe.analysis.rules import RETIRED, RULES
from probe.apps.verdict import APP_RULES
from probe.vocabulary import (
    CONNECTION_STAGES,
    REFUSED,
    RESET,
    UNKNOWN_FAILURE_PREFIX,
    Evidence,
    Failure,
    Outcome,
    Stage,
    THFailure,
    stage_outcome,
)

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "probe"
WORDS = (
    {f.value for f in Failure}
    | {f.value for f in THFailure}
    | {o.value for o in Outcome if "/" in o.value}
)


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def spelled_words(source: str) -> list[tuple[int, str]]:
    """(line, word) for every string literal of ``source`` that is a failure or outcome word
    (docstrings and comments aside)."""
    tree = ast.parse(source)
    docs = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value in WORDS or node.value.startswith(UNKNOWN_FAILURE_PREFIX):
                found.append((node.lineno, node.value))
    return found


def test_no_failure_or_outcome_string_is_spelled_outside_the_vocabulary() -> None:
    offenders = []
    for path in sorted(PROBE.rglob("*.py")):
        if path == PROBE / "vocabulary.py":
            continue
        for line, word in spelled_words(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(REPO)}:{line}: {word!r}")
    assert offenders == [], "use probe.vocabulary instead:\n" + "\n".join(offenders)


def test_the_scan_sees_what_it_must_and_ignores_docs() -> None:
    source = '''"""A docstring may say connection_refused."""
X = "connection_refused"  # a comment may say tcp/reset
def f():
    """dns/nxdomain in a docstring."""
    return {"x": "dns/nxdomain", "y": "unknown_failure: oops", "z": "dns_name_error"}
'''
    assert spelled_words(source) == [
        (2, "connection_refused"), (5, "dns/nxdomain"), (5, "unknown_failure: oops"),
        (5, "dns_name_error"),
    ]  # fmt: skip


def test_outcomes_are_stage_slash_word() -> None:
    prefixes = {s.value for s in Stage} | {"down", "unknown"}
    for outcome in Outcome:
        if outcome is Outcome.OK:
            continue
        stage, _, word = outcome.value.partition("/")
        assert stage in prefixes and word and word == word.lower(), outcome


def test_every_rule_names_a_vocabulary_outcome_and_evidence() -> None:
    for rule in RULES:
        assert rule.outcome in set(Outcome), rule.rule_id
        assert rule.evidence in set(Evidence), rule.rule_id
    for app_rule in APP_RULES:
        assert app_rule.evidence in set(Evidence), app_rule.rule_id


def test_one_word_one_meaning_for_refused_and_reset() -> None:
    """A RST to the SYN is tcp/refused for websites as for apps; tcp/reset is a reset
    connection attempt (issue 13: the two engines used to disagree)."""
    (web,) = [r for r in RULES if r.outcome == Outcome.TCP_REFUSED]
    assert web.rule_id == "tcp.syn_refused"
    for failure in REFUSED:
        assert stage_outcome("tcp", failure) == Outcome.TCP_REFUSED
    for failure in RESET:
        assert stage_outcome("tcp", failure) == Outcome.TCP_RESET
    assert not any(r.outcome == Outcome.TCP_RESET for r in RULES)


@given(stage=st.sampled_from(CONNECTION_STAGES), failure=st.text())
def test_stage_outcome_is_total(stage: str, failure: str) -> None:
    assert stage_outcome(stage, failure) in set(Outcome)


def test_rules_and_retired_ids_are_documented() -> None:
    docs = (REPO / "docs" / "verdicts.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"| `{rule.rule_id}` | `{rule.outcome}` |" in docs, rule.rule_id
    retired = docs.split("## Retired rules", 1)[1].split("\n## ", 1)[0]
    for r in RETIRED:
        assert f"| `{r.rule_id}` | {r.last_version} |" in retired, r.rule_id
