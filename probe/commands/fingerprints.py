"""`probe fingerprints update`: download OONI's and Censored Planet's public blockpage fingerprints.

Files land in ``--dest`` with the names :func:`probe.analysis.fingerprints.load_directory` reads;
use them with ``probe analyze --fingerprints-dir DIR``. Each file is parsed before it replaces the
old copy (written to a temporary name, then renamed), so a bad download never leaves a broken set.
The base URLs are options so that tests can point them at a loopback server.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from probe import inputs
from probe.commands.argtypes import seconds_arg

HELP = "manage blockpage fingerprints (download OONI and Censored Planet sets)"

OONI_BASE = "https://raw.githubusercontent.com/ooni/blocking-fingerprints/main/"
CP_BASE = (
    "https://raw.githubusercontent.com/censoredplanet/censoredplanet-analysis/master/"
    "pipeline/metadata/data/"
)


def default_dest() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "censorprobe" / "fingerprints"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    up = sub.add_parser("update", help="download the public fingerprint sets")
    up.add_argument("--dest", type=Path, default=None, help=f"directory (default {default_dest()})")
    up.add_argument("--ooni-base-url", default=OONI_BASE, help="base URL of the OONI CSV files")
    up.add_argument("--cp-base-url", default=CP_BASE, help="base URL of Censored Planet's JSONL")
    up.add_argument(
        "--timeout",
        type=seconds_arg(3600.0),
        default=60.0,
        help="seconds per download",
    )
    parser.set_defaults(func=run)


def _fetch(url: str, timeout: float) -> str:
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": "censorprobe-fingerprints"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (https/config URL)
        data: bytes = resp.read()
    return data.decode("utf-8")


def update(dest: Path, *, ooni_base: str, cp_base: str, timeout: float) -> dict[str, int]:
    """Download, validate and install the four files; returns fingerprints per file."""
    from probe.analysis import fingerprints as fpmod

    jobs = (
        (fpmod.OONI_DNS_FILE, ooni_base + "fingerprints_dns.csv", "csv", False),
        (fpmod.OONI_HTTP_FILE, ooni_base + "fingerprints_http.csv", "csv", False),
        (fpmod.CP_BLOCKPAGE_FILE, cp_base + "blockpage_signatures.json", "cp", False),
        (fpmod.CP_FALSE_POSITIVE_FILE, cp_base + "false_positive_signatures.json", "cp", True),
    )
    texts: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, url, kind, is_fp in jobs:
        text = _fetch(url, timeout)
        if kind == "csv":
            n = len(fpmod.parse_ooni_csv(text))
        else:
            n = len(fpmod.parse_censoredplanet_jsonl(text, false_positive=is_fp))
        if n == 0:
            raise ValueError(f"{url}: no usable fingerprint in the download")
        texts[name], counts[name] = text, n
    for name, text in texts.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return counts


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) != "update":
        print("probe fingerprints: error: choose an action: update", file=sys.stderr)
        return 2
    dest = args.dest or default_dest()
    try:
        inputs.output_directory(dest, what="--dest", empty=False)
    except inputs.InputError as exc:
        print(f"probe fingerprints: error: {exc}", file=sys.stderr)
        return 2
    for url in (args.ooni_base_url, args.cp_base_url):
        if not url.startswith(("http://", "https://")):
            print(
                f"probe fingerprints: error: base URLs are http(s), got {url[:60]!r}",
                file=sys.stderr,
            )
            return 2
    try:
        counts = update(
            dest, ooni_base=args.ooni_base_url, cp_base=args.cp_base_url, timeout=args.timeout
        )
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"probe fingerprints: error: {exc}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{n:6d}  {dest / name}")
    return 0
