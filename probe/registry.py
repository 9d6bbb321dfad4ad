"""Every test the probe runs and analyses, declared once (probe-cli's ``internal/registry``).

An :class:`ExperimentSpec` says, for one ``test_name``: its version, what its input is, how it
is measured, how a failed measurement is written, how it is analysed and how its verdict is
summarised. The session (measure, finish), the runner (summary line), the envelope (name,
version) and the batch (verdict columns) look it up here; none of them dispatches on test
names itself.

The measure functions are network code: they are referenced by name (``"module:function"``)
and imported only when a run needs them, so the analysis side (the batch, ``probe analyze``)
imports this module without trio, sockets or TLS. The analyze and verdict functions are pure.

Adding a test (QUIC, DoH/DoT, the packet-level checks ...) is: one measure module, one pure
analysis (rules as data, vocabulary from :mod:`probe.vocabulary`), one entry in :data:`TESTS`,
its docs. Its measure function has the signature of :data:`MeasureFunction`; its analysis
returns the keys merged into ``test_keys``, among them ``x_outcome``, ``x_rule_id`` and
``x_rules_version``; its verdict function reads them back into a :class:`~probe.summary.Verdict`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from probe.analysis import analyze as analyze_web
from probe.analysis.verdict import web_verdict
from probe.apps.verdict import analyze_app, app_verdict
from probe.summary import Verdict


class InputKind(StrEnum):
    """What a test measures, and what its ``input`` says."""

    #: one URL; ``input`` is the URL
    URL = "url"
    #: one app file (its hosts); ``input`` is ``app:<name>``
    APP = "app"
    #: one app file, written as OONI's test of that app: ``input`` is null
    OONI_APP = "ooni_app"


#: ``measure(target, *, ctx, test, release)``: the target is a URL (``str``) or an ``AppSpec``;
#: ``test`` is the spec itself (measure modules never import the registry: it names them);
#: ``release()`` frees the run's concurrency slot once only passive listening remains
MeasureFunction = Callable[..., Awaitable[dict[str, Any]]]
#: ``failed(target, exc, *, ctx, test)``: the measurement of a target whose measure raised
FailedFunction = Callable[..., dict[str, Any]]
#: ``analyze(measurement, *, fingerprints, public_ranges)``: the verdict keys (pure, total)
AnalyzeFunction = Callable[..., dict[str, Any]]
VerdictFunction = Callable[[Mapping[str, Any]], Verdict]


def _resolve(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """One test, as the session, the runner, the envelope and the batch see it."""

    name: str
    version: str
    input_kind: InputKind
    #: ``"module:function"`` of the :data:`MeasureFunction` (imported when first used)
    measure: str
    #: ``"module:function"`` of the :data:`FailedFunction`
    failed: str
    analyze: AnalyzeFunction
    verdict: VerdictFunction
    #: the batch's ``verdict_source`` for this test's verdicts
    engine: str
    description: str

    def measure_function(self) -> MeasureFunction:
        function: MeasureFunction = _resolve(self.measure)
        return function

    def failed_function(self) -> FailedFunction:
        function: FailedFunction = _resolve(self.failed)
        return function


_WEB_MEASURE = "probe.experiment:measure_web"
_WEB_FAILED = "probe.experiment:failed_measurement"
_APP_MEASURE = "probe.apps.runner:measure_app"
_APP_FAILED = "probe.apps.runner:failed_measurement"

WEB_CONNECTIVITY = "web_connectivity"
APP_ENDPOINTS = "app_endpoints"


def _app(name: str, version: str, kind: InputKind, description: str) -> ExperimentSpec:
    """An app test: the app runner measures it, the one app engine analyses it."""
    return ExperimentSpec(
        name=name,
        version=version,
        input_kind=kind,
        measure=_APP_MEASURE,
        failed=_APP_FAILED,
        analyze=analyze_app,
        verdict=app_verdict,
        engine="apps",
        description=description,
    )


def _ooni_app(name: str, version: str, spec_id: str) -> ExperimentSpec:
    return _app(name, version, InputKind.OONI_APP, f"OONI's {name} test ({spec_id})")


TESTS: Final[tuple[ExperimentSpec, ...]] = (
    ExperimentSpec(
        name=WEB_CONNECTIVITY,
        version="0.5.0",
        input_kind=InputKind.URL,
        measure=_WEB_MEASURE,
        failed=_WEB_FAILED,
        analyze=analyze_web,
        verdict=web_verdict,
        engine="analysis",
        description="Web Connectivity: DNS, TCP, TLS, HTTP of one URL against a control",
    ),
    _ooni_app("whatsapp", "0.11.0", "ts-018"),
    _ooni_app("telegram", "0.3.1", "ts-020"),
    _ooni_app("signal", "0.2.5", "ts-029"),
    _ooni_app("facebook_messenger", "0.2.1", "ts-019"),
    _app(
        APP_ENDPOINTS,
        "0.1.0",
        InputKind.APP,
        "the hosts an app's API talks to, stage by stage, against a control",
    ),
)

BY_NAME: Final[Mapping[str, ExperimentSpec]] = MappingProxyType({t.name: t for t in TESTS})


def lookup(test_name: object) -> ExperimentSpec | None:
    """The spec of ``test_name``, or None for a test the probe does not analyse."""
    return BY_NAME.get(test_name) if isinstance(test_name, str) else None


def spec(test_name: str) -> ExperimentSpec:
    """The spec of a test the probe knows (KeyError otherwise)."""
    return BY_NAME[test_name]


def app_test(ooni_test: str | None) -> ExperimentSpec:
    """The test an app file is measured as: OONI's test of that app, or ``app_endpoints``."""
    return BY_NAME[ooni_test or APP_ENDPOINTS]
