"""Optional mypyc compilation of the analysis hot path (the same source also runs as Python).

``python -m probe.native build`` compiles :data:`MODULES` with mypyc (part of mypy): each gets
a C extension beside its ``.py`` (the code of all of them lives in one shared library,
``probe/_compiled__mypyc*.so``), and Python imports an extension before a source file. The
batch analysis re-derives every verdict, so ``probe analyze`` spends most of its time in these
modules; compiled, they take about a quarter less CPU. Nothing else changes: same source, same
results (the test suite runs both ways).

A build records the SHA-256 of every compiled source in ``probe/_compiled.json``. When a
source changes after the build, the extension still holds the old code, so :func:`stale`
lists such modules: ``probe analyze`` warns, the test suite refuses to run, ``make`` rebuilds. With
``CENSORPROBE_PURE=1`` in the environment the sources are imported even when extensions are
there (:func:`prefer_source`, called from ``probe/__init__.py``).

``python -m probe.native ensure`` builds only when nothing is built or something is stale
(``make test`` and ``make bench`` call it); ``status`` tells what is compiled and loaded;
``clean`` removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

#: the compiled modules: the verdict engine, the batch step and the privacy walk that every
#: measurement goes through before it is written (repo-relative paths)
MODULES = (
    "probe/netaddr.py",
    "probe/privacy/forms.py",
    "probe/privacy/scrubber.py",
    "probe/privacy/publish.py",
    "probe/analysis/values.py",
    "probe/analysis/urls.py",
    "probe/analysis/needles.py",
    "probe/analysis/fingerprints.py",
    "probe/analysis/samples.py",
    "probe/analysis/observations.py",
    "probe/analysis/dnscheck.py",
    "probe/analysis/httpdiff.py",
    "probe/analysis/context.py",
    "probe/analysis/timing.py",
    "probe/analysis/rules.py",
    "probe/analysis/verdict.py",
    "probe/summary.py",
    "probe/apps/facts.py",
    "probe/apps/ooni.py",
    "probe/apps/verdict.py",
    "probe/batch/flatten.py",
    "probe/batch/verdict.py",
    "probe/batch/step.py",
)

#: mypyc's group: the shared library is ``probe/_compiled__mypyc.<suffix>``
GROUP = "probe._compiled"
#: the SHA-256 of each compiled source at build time (relative to the repository)
MANIFEST = "probe/_compiled.json"
PURE_ENV = "CENSORPROBE_PURE"


def module_name(path: str) -> str:
    """``probe/analysis/values.py`` -> ``probe.analysis.values``."""
    return path.removesuffix(".py").replace("/", ".")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extensions(root: Path = ROOT) -> list[Path]:
    """The compiled files present: one extension per module and the shared library."""
    found: list[Path] = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found += root.glob(f"probe/**/*{suffix}")
    return sorted(set(found))


def stale(root: Path = ROOT) -> list[str]:
    """Modules whose extension no longer matches their source (empty when nothing is built)."""
    if not extensions(root):
        return []
    try:
        built: dict[str, str] = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return [module_name(path) for path in MODULES]
    return [
        module_name(path)
        for path in MODULES
        if not (root / path).is_file() or built.get(path) != _digest(root / path)
    ]


def loaded() -> dict[str, bool]:
    """For each compiled module: whether the import system finds its extension (not the source)."""
    out: dict[str, bool] = {}
    for path in MODULES:
        name = module_name(path)
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin is None:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
        out[name] = bool(origin) and not str(origin).endswith(".py")
    return out


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' ``.py`` files, so that extensions beside them are ignored."""

    def __init__(self, root: Path) -> None:
        self._paths = {module_name(path): root / path for path in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self._paths.get(fullname)
        if source is None or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def prefer_source(root: Path = ROOT) -> None:
    """Import the compiled modules from their sources from now on (``CENSORPROBE_PURE=1``)."""
    if not any(isinstance(finder, _SourceFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst(root))


def build(root: Path = ROOT) -> list[Path]:
    """Compile :data:`MODULES` in place with mypyc; returns the extensions written."""
    from mypyc.build import mypycify
    from setuptools import setup

    clean(root)
    with contextlib.chdir(root):  # mypyc names modules, and --inplace places them, from here
        modules = mypycify(list(MODULES), opt_level="3", group_name=GROUP)
        setup(
            name="censorprobe-compiled",
            ext_modules=modules,
            script_args=["-q", "build_ext", "--inplace", "--build-temp", "build/mypyc"],
        )
    (root / MANIFEST).write_text(
        json.dumps({path: _digest(root / path) for path in MODULES}, indent=1) + "\n"
    )
    return extensions(root)


def clean(root: Path = ROOT) -> list[Path]:
    """Remove every compiled file (the sources are used again)."""
    removed = extensions(root)
    for path in removed:
        path.unlink()
    (root / MANIFEST).unlink(missing_ok=True)
    return removed


def status_lines(root: Path = ROOT) -> list[str]:
    """What ``status`` prints: built or not, stale modules, what the imports would load."""
    built = extensions(root)
    if not built:
        return ["not compiled: the analysis runs as plain Python (python -m probe.native build)"]
    lines = [f"compiled: {len(built)} extension files"]
    old = stale(root)
    if old:
        lines.append(f"STALE (source changed since the build): {', '.join(old)}")
    pure = [name for name, native in loaded().items() if not native]
    if pure:
        lines.append(f"loaded from source: {', '.join(pure)}")
    return lines


ACTIONS = ("build", "ensure", "status", "clean")


def main(argv: list[str] | None = None) -> int:
    """``python -m probe.native build|ensure|status|clean`` (a build tool, not a ``probe``
    subcommand: one word, no options, so no argparse outside the CLI layer)."""
    words = sys.argv[1:] if argv is None else argv
    if len(words) != 1 or words[0] not in ACTIONS:
        print(f"usage: python -m probe.native {{{','.join(ACTIONS)}}}", file=sys.stderr)
        return 2
    action = words[0]
    if action == "ensure" and extensions() and not stale():
        print("compiled modules are up to date")
    elif action in ("build", "ensure"):
        written = build()
        print(f"compiled {len(MODULES)} modules ({len(written)} extension files)")
    elif action == "clean":
        print(f"removed {len(clean())} extension files")
    else:
        print("\n".join(status_lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
