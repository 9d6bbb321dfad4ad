"""probe.native: staleness detection, source-first imports, and compiled == sources on real data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probe import native

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"


def _copy_sources(root: Path) -> None:
    for path in native.MODULES:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / path, target)


def _fake_build(root: Path) -> None:
    """What a build leaves: extensions and the manifest of the sources' digests."""
    suffix = ".cpython-311-x86_64-linux-gnu.so"
    (root / "probe" / f"_compiled__mypyc{suffix}").write_bytes(b"")
    (root / "probe" / "analysis" / f"values{suffix}").write_bytes(b"")
    manifest = {
        path: native.hashlib.sha256((root / path).read_bytes()).hexdigest()
        for path in native.MODULES
    }
    (root / native.MANIFEST).write_text(json.dumps(manifest))


def test_nothing_built_is_never_stale(tmp_path: Path) -> None:
    _copy_sources(tmp_path)
    assert native.extensions(tmp_path) == []
    assert native.stale(tmp_path) == []


def test_an_edited_source_makes_its_module_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        native.importlib.machinery, "EXTENSION_SUFFIXES", [".cpython-311-x86_64-linux-gnu.so"]
    )
    _copy_sources(tmp_path)
    _fake_build(tmp_path)
    assert len(native.extensions(tmp_path)) == 2
    assert native.stale(tmp_path) == []
    rules = tmp_path / "probe" / "analysis" / "rules.py"
    rules.write_text(rules.read_text() + "\n# edited\n")
    assert native.stale(tmp_path) == ["probe.analysis.rules"]
    (tmp_path / native.MANIFEST).unlink()
    assert native.stale(tmp_path) == [native.module_name(p) for p in native.MODULES]
    assert len(native.clean(tmp_path)) == 2
    assert native.stale(tmp_path) == []


_PROBE = r"""
import json, sys
from probe import native
from probe.analysis import observations
print(json.dumps({"loaded": native.loaded(), "file": observations.__file__}))
"""


def _python(script: str, *args: str, pure: bool) -> str:
    """stdout of ``script`` in a fresh interpreter, on the compiled modules or the sources."""
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _imports(pure: bool) -> dict[str, object]:
    result: dict[str, object] = json.loads(_python(_PROBE, pure=pure))
    return result


def test_pure_mode_imports_the_sources_and_default_mode_the_build() -> None:
    pure = _imports(pure=True)
    assert not any(dict(pure["loaded"]).values())  # type: ignore[call-overload]
    assert str(pure["file"]).endswith("observations.py")
    default = _imports(pure=False)
    built = bool(native.extensions())
    # with a build every module comes from it (the shared library is found), else none does
    assert set(dict(default["loaded"]).values()) == {built}  # type: ignore[call-overload]


_STEP = r"""
import json, sys
from pathlib import Path
from probe.analysis.fingerprints import builtin
from probe.batch.reader import discover, iter_chunks
from probe.batch.step import StepOptions, process_chunk
options = StepOptions(fingerprints=builtin())
out = []
for chunk in iter_chunks(discover(sys.argv[1:]), max_lines=50):
    result = process_chunk(chunk, options)
    for table in (result.measurement_table, result.observation_table):
        out.append(table.to_pylist() if table is not None else None)
    out.append([[p.source, p.line, p.kind, p.detail] for p in result.malformed + result.edge_cases])
sys.stdout.write(json.dumps(out, default=str, sort_keys=True))
"""


def _step_output(pure: bool) -> str:
    inputs = [str(SHARED / "ooni-samples"), str(SHARED / "ooni-qa")]
    return _python(_STEP, *inputs, pure=pure)


def test_compiled_and_sources_give_identical_rows_on_every_real_sample() -> None:
    """Every verdict, observation row and edge case of OONI's samples and QA scenarios, computed
    by the build (or the sources again when nothing is built) and by the sources."""
    compiled, pure = _step_output(pure=False), _step_output(pure=True)
    assert len(json.loads(pure)) > 30
    assert compiled == pure
