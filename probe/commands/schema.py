"""`probe schema`: print the JSON Schema of the measurements the probe writes.

The schema is generated from :class:`probe.archival.Measurement` (OONI df-000 with the Web
Connectivity and instant-messaging test keys), so it can never drift from the writer.
"""

from __future__ import annotations

import argparse

HELP = "print the JSON Schema of a measurement (OONI format, as the probe writes it)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compact", action="store_true", help="one line instead of indented JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from probe.archival import Measurement

    schema = Measurement.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    indent = None if args.compact else 2
    sys.stdout.write(json.dumps(schema, indent=indent, sort_keys=False) + "\n")
    return 0
