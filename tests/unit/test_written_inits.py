"""The written-out ``__init__`` of every ``@dataclass(init=False)`` class in the compiled modules
(probe.native: mypyc compiles a hand-written ``__init__``, not the generated one) matches the
fields the class declares: the same names in the same order, the same annotations, and one
``self.<field> = <field>`` per field. Read from the source, so it holds compiled or not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from probe import native

REPO = Path(__file__).resolve().parents[2]


def _is_init_false_dataclass(node: ast.ClassDef) -> bool:
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "dataclass":
            for kw in deco.keywords:
                if kw.arg == "init" and isinstance(kw.value, ast.Constant):
                    return kw.value.value is False
    return False


def written_inits(source: str) -> list[tuple[str, list[str]]]:
    """(class, problems) for every ``@dataclass(..., init=False)`` class of ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef) or not _is_init_false_dataclass(node):
            continue
        fields = [
            (s.target.id, ast.unparse(s.annotation))
            for s in node.body
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
        ]
        init = next(
            (s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"),
            None,
        )
        problems: list[str] = []
        if init is None:
            out.append((node.name, ["no __init__"]))
            continue
        params = [
            (a.arg, ast.unparse(a.annotation) if a.annotation else "")
            for a in init.args.args[1:] + init.args.kwonlyargs
        ]
        if params != fields:
            problems.append(f"parameters {params} != fields {fields}")
        assigned = [
            (t.attr, v.id)
            for s in init.body
            if isinstance(s, ast.Assign) and len(s.targets) == 1
            for t, v in [(s.targets[0], s.value)]
            if isinstance(t, ast.Attribute) and isinstance(v, ast.Name)
        ]
        if assigned != [(name, name) for name, _ in fields]:
            problems.append(f"assignments {assigned} != fields {[n for n, _ in fields]}")
        out.append((node.name, problems))
    return out


def test_the_check_catches_a_drift() -> None:
    source = """
@dataclass(slots=True, init=False)
class A:
    x: int
    y: str
    def __init__(self, x: int, z: str) -> None:
        self.x = x
        self.y = z
"""
    ((name, problems),) = written_inits(source)
    assert name == "A" and len(problems) == 2


@pytest.mark.parametrize("module", native.MODULES)
def test_written_inits_match_their_fields(module: str) -> None:
    found = written_inits((REPO / module).read_text(encoding="utf-8"))
    assert [(name, problems) for name, problems in found if problems] == []


def test_the_compiled_modules_have_written_inits_to_check() -> None:
    total = sum(len(written_inits((REPO / m).read_text(encoding="utf-8"))) for m in native.MODULES)
    assert total >= 10
