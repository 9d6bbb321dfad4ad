"""Suite-wide guard: never test stale compiled modules (see probe.native)."""

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
