"""A run's plan, typed: what ``probe run`` decided from its options, before anything is measured.

``probe.commands.run`` turns the command line (and the config file) into a :class:`RunPlan`;
:class:`probe.session.Session` executes it. Neither sees the other's types: the session never
reads argparse namespaces, the command never builds measurements. The work is either web
targets (:class:`WebWork`: URL sources, streamed, filtered by category and limit) or apps
(:class:`AppWork`: parsed app files); :meth:`RunPlan.test_name` is the test the report id
names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from probe import registry
from probe.apps.spec import AppSpec
from probe.config import Config
from probe.targets import BadLine, Target, read_list, read_urls, select


@dataclass(frozen=True, slots=True)
class UrlSource:
    """URLs given on the command line (``--input``)."""

    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListSource:
    """A target list file (ours or Citizen Lab's CSV)."""

    path: Path


Source = UrlSource | ListSource


def iter_sources(sources: tuple[Source, ...]) -> Iterator[Target | BadLine]:
    """Every target (or bad line) of ``sources``, streamed, in order."""
    for source in sources:
        if isinstance(source, UrlSource):
            yield from read_urls(source.urls)
        else:
            yield from read_list(source.path)


@dataclass(frozen=True, slots=True)
class WebWork:
    """A URL test (Web Connectivity unless ``test`` names another) over the URLs of
    ``sources``."""

    sources: tuple[Source, ...]
    category: str | None = None
    limit: int | None = None
    #: the registry's name of the test to run on each URL
    test: str = registry.WEB_CONNECTIVITY

    def items(self) -> Iterator[Target | BadLine]:
        return select(iter_sources(self.sources), category=self.category, limit=self.limit)

    def count(self) -> int:
        """How many distinct targets :meth:`items` gives (one pass over the sources)."""
        seen: set[str] = set()
        for item in select(iter_sources(self.sources), category=self.category, limit=None):
            if isinstance(item, Target):
                seen.add(item.url)
                if self.limit is not None and len(seen) >= self.limit:
                    break
        return len(seen)


@dataclass(frozen=True, slots=True)
class AppWork:
    """The app tests of ``apps`` (one measurement per app)."""

    apps: tuple[AppSpec, ...]

    def items(self) -> Iterator[Target]:
        """One runner item per app; its ``url`` is the app key (``app:<name>``)."""
        for app in self.apps:
            yield Target(url=app.key, category_code="APP", source=app.origin)

    def by_key(self) -> dict[str, AppSpec]:
        return {app.key: app for app in self.apps}


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything ``probe run`` decided; the session needs nothing else."""

    config: Config
    work: WebWork | AppWork
    #: the output file; None: ``results/<date>/<report_id>.jsonl`` once the report id exists
    output: Path | None
    #: append to ``output``, measuring only what it does not hold yet
    resume: bool = False
    #: how many targets (None when not known in advance)
    total: int | None = None
    #: a live progress bar when the terminal allows it (``--no-progress`` says no)
    live_progress: bool = True
    #: --probe-asn / --probe-cc (or the config file) given: they win over geolocation
    asn_explicit: bool = False
    cc_explicit: bool = False

    @property
    def test_name(self) -> str:
        """The test the report id names: the apps' own test when they share one."""
        if isinstance(self.work, WebWork):
            return self.work.test
        names = {registry.app_test(app.ooni_test).name for app in self.work.apps}
        return names.pop() if len(names) == 1 else registry.APP_ENDPOINTS
