"""The ``probe`` command line: one subcommand per module in :mod:`probe.commands`.

Each command module exposes ``HELP`` (one line) and ``register(parser)`` which adds its options
and sets ``parser.set_defaults(func=...)``; ``func(args) -> int`` is the exit code. Heavy imports
happen inside ``func`` so that ``probe --help`` stays fast. Bad options exit 2 with one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from probe import __version__

#: (subcommand, module) in the order ``probe --help`` lists them
COMMANDS: tuple[tuple[str, str], ...] = (
    ("onboard", "probe.commands.onboard"),
    ("run", "probe.commands.run"),
    ("upload", "probe.commands.upload"),
    ("analyze", "probe.commands.analyze"),
    ("report", "probe.commands.report"),
    ("helper", "probe.commands.helper"),
    ("collector", "probe.commands.collector"),
    ("geoip", "probe.commands.geoip"),
    ("fingerprints", "probe.commands.fingerprints"),
    ("schema", "probe.commands.schema"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="probe", description="Network censorship measurement probe.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.register(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except KeyboardInterrupt:
        print("probe: stopped by Ctrl-C", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
