"""Command line of the lab: ``python -m tests.lab up|down|status|env|run-in-client|control-start``.

``up`` honours LAB_DELAY_MS (extra one-way latency per direction on the client link, in ms).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tests.lab import lab
from tests.lab import model as m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="clean (re)start of the lab")
    p_up.add_argument("--control", action="store_true", help="also start the control vantage")
    sub.add_parser("down", help="remove namespaces, /etc/netns entries, recorded processes")
    sub.add_parser("status", help="print what is up (exit 0 only if the lab is fully up)")
    p_env = sub.add_parser("env", help="print the lab facts the probe needs")
    p_env.add_argument("--format", choices=("json", "shell"), default="json")
    p_run = sub.add_parser("run-in-client", help="run a command inside cp-client")
    p_run.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("control-start", help="start `probe helper serve` in cp-inet (recorded)")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            delay = float(os.environ.get("LAB_DELAY_MS", "0") or 0)
            info = lab.up(delay_ms=delay)
            if args.control:
                lab.control_start()
            print(
                f"lab up in {info['setup_seconds']} s (delay {delay} ms); state in "
                f"{info['state_dir']}"
            )
            return 0
        if args.command == "down":
            for line in lab.down():
                print(line)
            return 0
        if args.command == "status":
            st = lab.status()
            print(json.dumps(st, indent=2))
            return 0 if st["up"] else 1
        if args.command == "env":
            info = lab.facts(m.state_dir())
            if args.format == "json":
                print(json.dumps(info, indent=2))
            else:
                for key, value in info.items():
                    text = ",".join(value) if isinstance(value, list) else value
                    if isinstance(value, dict):
                        text = ",".join(f"{k}={v}" for k, v in value.items())
                    print(f"LAB_{key.upper()}='{text}'")
            return 0
        if args.command == "run-in-client":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("run-in-client needs a command after --")
            os.execvp("ip", lab.client_argv(cmd))
        if args.command == "control-start":
            pid = lab.control_start()
            print(f"control vantage pid {pid} on {m.CONTROL_ADDR}:{m.CONTROL_PORT}")
            return 0
    except lab.LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
