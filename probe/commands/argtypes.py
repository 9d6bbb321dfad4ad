"""argparse ``type=`` adapters of the validators in :mod:`probe.inputs`.

A validator raises :class:`probe.inputs.InputError`; as an argparse ``type=`` it becomes
argparse's one-line ``argument --x: <message>`` (exit status 2), so the option is named. They
live here because only the command line sees argparse (an import-linter contract).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from probe import inputs

T = TypeVar("T")


def argtype(check: Callable[[str], T], label: str = "") -> Callable[[str], T]:
    """An argparse ``type=`` from a validator: its InputError becomes argparse's one-line
    ``argument --x: <message>`` (status 2)."""

    def convert(text: str) -> T:
        try:
            return check(text)
        except inputs.InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = label or getattr(check, "__name__", "value")
    return convert


def seconds_arg(maximum: float = inputs.MAX_SECONDS) -> Callable[[str], float]:
    """A duration in seconds (see :func:`probe.inputs.seconds`)."""
    return argtype(lambda text: inputs.seconds(text, name="value", maximum=maximum), "seconds")


def count_arg(minimum: int, maximum: int) -> Callable[[str], int]:
    """A whole number within ``[minimum, maximum]`` (see :func:`probe.inputs.count`)."""
    return argtype(
        lambda text: inputs.count(text, name="value", minimum=minimum, maximum=maximum), "N"
    )
