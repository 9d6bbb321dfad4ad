"""See docs/ARCHITECTURE.md."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def usage_of(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """The ``func`` of a command that needs a sub-command: print its help, exit status 2."""

    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return usage
