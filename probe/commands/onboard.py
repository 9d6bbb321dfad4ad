"""`probe onboard`: informed consent, once, before the first measurement.

Interactive (the default, on a terminal): the volunteer reads what the probe does, the risks and
what a measurement contains (:mod:`probe.consent`), answers a short true/false quiz (a wrong
answer shows why and asks again: consent must be informed), chooses the publishing options,
then agrees explicitly. Scripted: ``probe onboard --yes`` plus the publishing flags records the
same consent without questions; its help says what agreeing means. ``--text`` prints the whole
text, ``--show`` what is recorded, ``--withdraw`` removes the consent.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from probe import consent
from probe.configfile import ConfigFileError, config_path
from probe.consent import Consent, Publishing, Question

HELP = "read the risks and agree to them (informed consent), choose what to publish"

YES_HELP = (
    "agree without questions (for scripts): you confirm you have read `probe onboard --text`: "
    "running the probe can be seen by anyone watching your network and may be illegal where "
    "you are; measurements are sent to the collector given with --collector (there is no "
    "default: without one they stay on this computer) and published (unless --no-upload) with "
    "your country and network, never your IP address (unless --include-ip)"
)


def register(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--yes", action="store_true", help=YES_HELP)
    mode.add_argument("--text", action="store_true", help="print the consent text and exit")
    mode.add_argument("--show", action="store_true", help="print the recorded consent")
    mode.add_argument("--withdraw", action="store_true", help="remove the recorded consent")
    pub = parser.add_argument_group("publishing (default: as recorded, else the defaults)")
    pub.add_argument(
        "--upload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send each measurement to the collector (default on)",
    )
    pub.add_argument("--collector", metavar="URL", help="the collector to upload to")
    pub.add_argument(
        "--proxy",
        metavar="URL",
        help="upload through this proxy: http(s)://HOST:PORT or socks5h://HOST:PORT (Tor: "
        "socks5h://127.0.0.1:9050); '' for none",
    )
    pub.add_argument(
        "--include-asn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="publish your network's AS number (default on)",
    )
    pub.add_argument(
        "--include-cc",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="publish your country (default on)",
    )
    pub.add_argument(
        "--include-ip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="publish your IP address (default off)",
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"config file (default {config_path()})"
    )
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"probe onboard: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    path: Path = args.config or config_path()
    if args.text:
        print(consent.consent_text(), end="")
        return 0
    try:
        given, publishing = consent.load(path)
        if args.show:
            print(_describe(given, publishing, path))
            return 0
        if args.withdraw:
            consent.withdraw(path)
            print(f"consent withdrawn ({path}); `probe run` will ask for it again")
            return 0
        proxy = args.proxy
        chosen = consent.with_changes(
            publishing,
            upload=args.upload,
            collector_url=consent.check_collector_url(args.collector) if args.collector else None,
            proxy=consent.check_proxy_url(proxy) if proxy else None,
            include_asn=args.include_asn,
            include_cc=args.include_cc,
            include_ip=args.include_ip,
        )
        if proxy == "":
            chosen = replace(chosen, proxy=None)
        if args.yes:
            recorded = consent.record(chosen, method=consent.SCRIPTED, path=path)
        else:
            if not sys.stdin.isatty():
                return _fail(
                    "not a terminal: read `probe onboard --text`, then agree with "
                    "`probe onboard --yes` (see --help)"
                )
            interactive = _interview(chosen, _Terminal())
            if interactive is None:
                print("No consent recorded: `probe run` will not measure.")
                return 1
            recorded = consent.record(interactive, method=consent.INTERACTIVE, path=path)
            chosen = interactive
    except (ConfigFileError, consent.ConsentError) as exc:
        return _fail(str(exc))
    print(_describe(recorded, chosen, path))
    return 0


def _describe(given: Consent | None, publishing: Publishing, path: Path) -> str:
    if given is not None:
        state = (
            f"consent: version {given.version} given {given.given:%Y-%m-%d %H:%M} UTC "
            f"({given.method})"
        )
        if not given.current:
            state += f" -- outdated, the text is now version {consent.CONSENT_VERSION}"
    else:
        state = "consent: not given"
    if not publishing.upload:
        upload = "off (measurements stay on this computer)"
    elif publishing.collector_url is None:
        upload = "on, but no collector set (--collector URL): measurements wait"
    else:
        upload = f"to {publishing.collector_url}"
        if publishing.proxy:
            upload += f" through {consent.redacted(publishing.proxy)}"

    def onoff(flag: bool) -> str:
        return "published" if flag else "withheld"

    return "\n".join(
        [
            state,
            f"upload: {upload}",
            f"network (ASN): {onoff(publishing.include_asn)}, country: "
            f"{onoff(publishing.include_cc)}, IP address: {onoff(publishing.include_ip)}",
            f"config: {path}",
        ]
    )


class _Terminal:
    """Plain text on the terminal (no colour: screen readers and copy-paste read it as is)."""

    def __init__(self, read: Callable[[str], str] = input) -> None:
        self._read = read
        self.width = max(40, min(shutil.get_terminal_size().columns, 90) - 2)

    def say(self, text: str = "", *, indent: str = "") -> None:
        if not text:
            print()
            return
        print("\n".join(textwrap.wrap(text, self.width, subsequent_indent=indent)))

    def title(self, text: str) -> None:
        print()
        print(text)
        print("=" * len(text))

    def ask(self, prompt: str) -> str:
        return self._read(prompt).strip()

    def pause(self) -> None:
        self.ask("Press Enter to continue... ")

    def yes_no(self, prompt: str, *, default: bool) -> bool:
        hint = "[Y/n]" if default else "[y/N]"
        while True:
            answer = self.ask(f"{prompt} {hint} ").lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            self.say("Please answer y or n.")


def _interview(publishing: Publishing, term: _Terminal) -> Publishing | None:
    """The interactive flow; the chosen Publishing, or None when the volunteer declines."""
    try:
        for title, paragraphs in consent.SECTIONS:
            term.title(title)
            for paragraph in paragraphs:
                term.say(paragraph, indent="  " if paragraph.startswith("- ") else "")
            term.pause()
        term.title("A short check")
        term.say("Answer t (true) or f (false).")
        for number, question in enumerate(consent.QUIZ, 1):
            _quiz(term, number, question)
        term.title("What to publish")
        publishing = _choose(term, publishing)
        term.title("Your agreement")
        term.say(consent.destination(publishing))
        term.say(
            "You have read the risks. Type 'yes' to agree and record your consent in the "
            "config file (you can withdraw it any time with `probe onboard --withdraw`); "
            "anything else leaves without consent."
        )
        if term.ask("Do you agree? ").lower() != "yes":
            return None
    except EOFError:
        print()
        return None
    return publishing


def _quiz(term: _Terminal, number: int, question: Question) -> None:
    while True:
        term.say()
        term.say(f"{number}. {question.statement}")
        answer = term.ask("true or false? [t/f] ").lower()
        if answer not in ("t", "true", "f", "false"):
            term.say("Please answer t or f.")
            continue
        if (answer in ("t", "true")) == question.answer:
            term.say("Right.")
            return
        term.say(f"Not quite: {question.explanation} Please answer again.")


def _choose(term: _Terminal, publishing: Publishing) -> Publishing:
    upload = term.yes_no("Upload your measurements to a collector?", default=publishing.upload)
    collector = publishing.collector_url
    proxy = publishing.proxy
    if upload:
        while True:
            if collector is None:
                term.say(
                    "The collector receives and publishes your measurements: give the address "
                    "of one you trust (there is no default). Leave it empty to keep them on "
                    "this computer for now."
                )
            shown = f" [{collector}]" if collector else ""
            text = term.ask(f"Collector URL{shown}: ") or (collector or "")
            if not text:
                term.say("No collector: measurements will wait on this computer until you set one.")
                collector = None
                break
            try:
                collector = consent.check_collector_url(text)
                break
            except consent.ConsentError as exc:
                term.say(str(exc))
        term.say(
            "If the collector is blocked where you are, uploads can go through a proxy, e.g. "
            "Tor's SOCKS port socks5h://127.0.0.1:9050. Enter '-' for no proxy."
        )
        while True:
            shown = f" [{consent.redacted(proxy)}]" if proxy else " [none]"
            text = term.ask(f"Proxy{shown}: ")
            if not text:
                break
            if text == "-":
                proxy = None
                break
            try:
                proxy = consent.check_proxy_url(text)
                break
            except consent.ConsentError as exc:
                term.say(str(exc))
    asn = term.yes_no("Publish your network's AS number?", default=publishing.include_asn)
    cc = term.yes_no("Publish your country?", default=publishing.include_cc)
    ip = term.yes_no("Publish your IP address (not recommended)?", default=publishing.include_ip)
    return Publishing(
        upload=upload,
        collector_url=collector,
        proxy=proxy,
        include_asn=asn,
        include_cc=cc,
        include_ip=ip,
    )
