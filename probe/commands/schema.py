"""`probe schema` (being built; see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import argparse

HELP = "schema"


def register(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
