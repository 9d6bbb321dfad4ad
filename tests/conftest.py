"""Suite-wide: never test stale compiled modules (see probe.native); a volunteer who consented."""

from __future__ import annotations

import os

import pytest

from probe import native


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(native.PURE_ENV):
        return
    old = native.stale()
    if old:
        raise pytest.UsageError(
            f"compiled modules older than their source: {', '.join(old)}; rebuild them "
            "(python -m probe.native build, or make test) or run the sources "
            f"({native.PURE_ENV}=1)"
        )


@pytest.fixture(scope="session")
def volunteer_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``os.environ`` plus a volunteer's config and data homes, consent given with
    ``probe onboard --yes --no-upload`` (tests/volunteer.py): what ``probe run`` needs."""
    from tests import volunteer

    return {**os.environ, **volunteer.home(tmp_path_factory.mktemp("volunteer"))}
