"""Check OONI measurements (JSONL on stdin) against OONI's own parser, ``oonidata`` 0.3.0.

Run it with the reference venv, which holds oonidata (it pins an old ``cryptography``, so it
lives apart from the probe's venv)::

    .venv-ref/bin/python tests/conformance/oonidata_check.py < results.jsonl

For every line it reports, one problem per output line (``line N: <path>: <what>``):

(a) anything that makes ``oonidata.dataclient.load_measurement`` raise (missing keys, bad
    shapes, invalid JSON);
(b) every value that oonidata would *silently* coerce: oonidata's dataclasses are mashumaro
    models, and mashumaro turns ``1`` into ``"1"`` for a ``str`` field, ``1.5`` into ``1`` for an
    ``int`` field, ``"abc"`` into ``["a", "b", "c"]`` for a list, and so on. We walk the class of
    the loaded object (its field annotations) together with the original JSON and flag any leaf
    whose JSON type does not match the annotation;
(c) ``measurement_start_time`` / ``test_start_time`` not in OONI's ``YYYY-MM-DD hh:mm:ss`` form
    (oonidata keeps them as strings, but its pipeline parses them with that layout).

Exit status 0 when no problem was found, 1 otherwise. The script depends only on the standard
library and oonidata: it is not part of the ``probe`` package.

Upstream annotation bugs we tolerate (:data:`OVERRIDES`; each checked against the spec and
real data, where the field is checked against the corrected annotation instead):

* ``NetworkEvent.transaction_id`` is annotated ``Optional[str]`` but df-008 and every real
  measurement use an integer (as do all the other events): checked as ``Optional[int]``.
* ``HTTPRequest.headers`` / ``HTTPResponse.headers`` are annotated ``Dict[str, str]``, but df-001
  and probe-cli write MaybeBinaryData values (a non-UTF-8 header value is BinaryData; oonidata
  would turn it into the text of a Python dict). Checked as ``Dict[str, str | BinaryData]``;
  ``headers_list`` (correctly annotated upstream) keeps the raw value either way.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from datetime import datetime
from typing import Any, Literal, Union

from oonidata.dataclient import load_measurement
from oonidata.models.dataformats import BinaryData
from oonidata.models.nettests import NETTEST_MODELS, BaseMeasurement

#: (dataclass name, field name) -> the corrected annotation (see the module docstring)
OVERRIDES: dict[tuple[str, str], Any] = {
    ("NetworkEvent", "transaction_id"): int | None,
    ("HTTPRequest", "headers"): dict[str, str | BinaryData] | None,
    ("HTTPResponse", "headers"): dict[str, str | BinaryData] | None,
}

TIME_LAYOUT = "%Y-%m-%d %H:%M:%S"

_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hints_cache.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _hints_cache[cls] = hints
    return hints


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def check_value(value: Any, tp: Any, path: str) -> list[str]:
    """Problems found when ``value`` (parsed JSON) is given to a field annotated ``tp``."""
    if tp is Any or tp is object:
        return []
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        # a union matches if any member matches cleanly; report against the union otherwise
        for member in args:
            if not check_value(value, member, path):
                return []
        inner = [member for member in args if member is not type(None)]
        if value is not None and len(inner) == 1:
            return check_value(value, inner[0], path)  # Optional[X]: say what is wrong inside
        return [f"{path}: JSON {_json_type(value)} {_short(value)} does not fit {_type_name(tp)}"]
    if origin is Literal:
        if any(value is lit or (type(value) is type(lit) and value == lit) for lit in args):
            return []
        return [f"{path}: {_short(value)} is not one of {list(args)}"]
    if tp is type(None):
        return [] if value is None else [f"{path}: expected null, got {_json_type(value)}"]
    if value is None:
        return [f"{path}: null given to non-optional {_type_name(tp)}"]
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list):
            return [f"{path}: expected a list ({_type_name(tp)}), got {_json_type(value)}"]
        if not args:
            return []
        problems: list[str] = []
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return [f"{path}: expected {len(args)} items, got {len(value)}"]
            for i, (item, item_tp) in enumerate(zip(value, args, strict=True)):
                problems += check_value(item, item_tp, f"{path}[{i}]")
            return problems
        for i, item in enumerate(value):
            problems += check_value(item, args[0], f"{path}[{i}]")
        return problems
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({_type_name(tp)}), got {_json_type(value)}"]
        problems = []
        if args:
            for key, item in value.items():
                problems += check_value(item, args[1], f"{path}.{key}")
        return problems
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({tp.__name__}), got {_json_type(value)}"]
        return check_object(value, tp, path)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        # JSON does not tell 0 from 0.0 (Go writes a float64 zero as 0)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    else:
        return [f"{path}: checker does not know annotation {_type_name(tp)}"]
    if ok:
        return []
    return [f"{path}: JSON {_json_type(value)} {_short(value)} given to {_type_name(tp)}"]


def check_object(obj: dict[str, Any], cls: type, path: str) -> list[str]:
    """Check every key of ``obj`` that ``cls`` declares (extra keys are ignored by oonidata)."""
    problems: list[str] = []
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        if field.name not in obj:
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if required:
                problems.append(f"{path or 'top level'}: missing required key {field.name!r}")
            continue
        value = obj[field.name]
        sub = f"{path}.{field.name}" if path else field.name
        annotation = OVERRIDES.get((cls.__name__, field.name), hints[field.name])
        problems += check_value(value, annotation, sub)
    return problems


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_measurement(msmt: Any) -> list[str]:
    """All problems of one parsed measurement (an empty list means it conforms)."""
    if not isinstance(msmt, dict):
        return [f"top level: expected an object, got {_json_type(msmt)}"]
    try:
        loaded = load_measurement(msmt=msmt)
    except Exception as exc:  # any failure of the reference parser is a finding
        text = str(exc).splitlines()[0] if str(exc) else ""
        if len(text) > 200:  # mashumaro quotes the whole offending value
            text = text[:197] + "..."
        problems = [f"load_measurement raised {type(exc).__name__}: {text}"]
        # walk the model oonidata would have used, to point at the offending value
        model = NETTEST_MODELS.get(msmt.get("test_name"), BaseMeasurement)  # type: ignore[arg-type]
        return problems + check_object(msmt, model, "")
    problems = check_object(msmt, type(loaded), "")
    for key in ("measurement_start_time", "test_start_time"):
        value = msmt.get(key)
        if isinstance(value, str):
            try:
                datetime.strptime(value, TIME_LAYOUT)
            except ValueError:
                problems.append(f"{key}: {value!r} is not in the form YYYY-MM-DD hh:mm:ss")
    return problems


def main() -> int:
    found = False
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            msmt = json.loads(line)
        except ValueError as exc:
            problems = [f"invalid JSON: {exc}"]
        else:
            problems = check_measurement(msmt)
        for problem in problems:
            found = True
            print(f"line {number}: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
