"""Informed consent: `probe onboard` in a real pseudo-terminal (pexpect), the scripted `--yes`,
the config file edited without losing the user's keys, and the one-line check `probe run` makes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pexpect
import pytest
from hypothesis import given
from hypothesis import strategies as st

from probe import configfile, consent

PROBE = [sys.executable, "-m", "probe"]

USER_FILE = """\
# my own settings
control_url = "https://th.example.org/"   # my helper

[timeouts]
dns = 3.0
"""


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(home), "COLUMNS": "100"}


def _spawn(home: Path, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        PROBE[0],
        [*PROBE[1:], "onboard", *args],
        env=_env(home),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 100),
    )


def _config(home: Path) -> Path:
    return home / "censorprobe" / "config.toml"


def _read_sections(child: pexpect.spawn) -> None:
    for title in ("What censorprobe does", "The risks", "What a measurement contains"):
        child.expect_exact(title)
        child.expect_exact("Press Enter to continue...")
        child.sendline("")


def test_interactive_consent_in_a_real_terminal(tmp_path: Path) -> None:
    _config(tmp_path).parent.mkdir(parents=True)
    _config(tmp_path).write_text(USER_FILE)
    child = _spawn(tmp_path)
    _read_sections(child)
    child.expect_exact("A short check")
    # 1. visible to the network: true; answer wrong first, the explanation shows, asked again
    child.expect_exact("may be able to see that I run censorprobe")
    child.expect_exact("[t/f]")
    child.sendline("f")
    child.expect_exact("Not quite: censorprobe is not a privacy tool")
    child.expect_exact("[t/f]")
    child.sendline("maybe")
    child.expect_exact("Please answer t or f.")
    child.expect_exact("[t/f]")
    child.sendline("t")
    child.expect_exact("Right.")
    # 2. published: true
    child.expect_exact("[t/f]")
    child.sendline("true")
    child.expect_exact("Right.")
    # 3. IP published: false
    child.expect_exact("Published measurements contain my IP address.")
    child.expect_exact("[t/f]")
    child.sendline("t")
    child.expect_exact("Not quite: Your IP address is removed")
    child.expect_exact("[t/f]")
    child.sendline("f")
    child.expect_exact("What to publish")
    child.expect_exact("Upload your measurements to a collector? [Y/n]")
    child.sendline("")
    child.expect(r"there\s+is\s+no\s+default")  # nothing is sent to a collector not named
    child.expect_exact("Collector URL: ")
    child.sendline("ftp://nope")
    child.expect_exact("collector URL must be http(s)")
    child.expect_exact("Collector URL: ")
    child.sendline("https://collector.example.org")
    child.expect_exact("Proxy [none]: ")
    child.sendline("socks5h://127.0.0.1:9050")
    child.expect_exact("network's AS number? [Y/n]")
    child.sendline("y")
    child.expect_exact("Publish your country? [Y/n]")
    child.sendline("n")
    child.expect_exact("IP address (not recommended)? [y/N]")
    child.sendline("")
    # the last thing read before agreeing: where the measurements go
    child.expect(
        r"sent to the collector\s+https://collector\.example\.org/\s+through\s+the\s+proxy"
        r"\s+socks5h://127\.0\.0\.1:9050"
    )
    child.expect_exact("Do you agree? ")
    child.sendline("yes")
    child.expect_exact("consent: version 1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    path = _config(tmp_path)
    text = path.read_text()
    assert text.startswith(USER_FILE)  # the user's keys, comments and layout are untouched
    data = tomllib.loads(text)
    assert data["control_url"] == "https://th.example.org/"
    assert data["timeouts"] == {"dns": 3.0}
    assert data["consent"]["version"] == consent.CONSENT_VERSION
    assert data["consent"]["method"] == "interactive"
    assert abs((datetime.now(UTC) - data["consent"]["given"]).total_seconds()) < 120
    assert data["publish"] == {
        "upload": True,
        "collector_url": "https://collector.example.org/",
        "proxy": "socks5h://127.0.0.1:9050",
        "include_asn": True,
        "include_cc": False,
        "include_ip": False,
    }
    assert consent.check(path) is None


@pytest.mark.parametrize("leave", ["no", "eof"])
def test_declining_or_leaving_records_nothing(tmp_path: Path, leave: str) -> None:
    child = _spawn(tmp_path)
    _read_sections(child)
    if leave == "eof":
        child.expect_exact("[t/f]")
        child.sendeof()
    else:
        for answer in ("t", "t", "f"):
            child.expect_exact("[t/f]")
            child.sendline(answer)
        child.expect_exact("[Y/n]")
        child.sendline("n")  # no upload: no collector questions
        for _ in range(3):
            child.expect(r"\[[yY]/[nN]\]")
            child.sendline("")
        child.expect(r"stay\s+on\s+this\s+computer\s+\(uploading\s+is\s+off\)")
        child.expect_exact("Do you agree? ")
        child.sendline("no")
    child.expect_exact("No consent recorded")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert not _config(tmp_path).exists()
    line = consent.check(_config(tmp_path))
    assert line is not None and "probe onboard" in line


def test_scripted_yes_keeps_other_keys_and_is_private(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(USER_FILE)
    os.chmod(path, 0o640)
    proc = subprocess.run(
        [*PROBE, "onboard", "--yes", "--collector", "http://127.0.0.1:9/", "--no-include-asn"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "consent: version 1" in proc.stdout
    assert path.read_text().startswith(USER_FILE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # an existing file keeps its mode
    given_, publishing = consent.load(path)
    assert given_ is not None and given_.method == "--yes" and given_.current
    assert publishing.collector_url == "http://127.0.0.1:9/"
    assert publishing.include_asn is False and publishing.include_cc is True
    assert publishing.uploads
    # a second --yes changes only what it names; --proxy '' removes the proxy
    subprocess.run(
        [*PROBE, "onboard", "--yes", "--no-upload", "--proxy", ""],
        env=_env(tmp_path),
        check=True,
        capture_output=True,
    )
    _, publishing = consent.load(path)
    assert publishing.upload is False and publishing.collector_url == "http://127.0.0.1:9/"
    assert publishing.include_asn is False and publishing.proxy is None
    # withdrawing keeps the choices
    subprocess.run(
        [*PROBE, "onboard", "--withdraw"], env=_env(tmp_path), check=True, capture_output=True
    )
    given_, publishing = consent.load(path)
    assert given_ is None and publishing.collector_url == "http://127.0.0.1:9/"


def test_new_config_file_is_created_0600(tmp_path: Path) -> None:
    path = _config(tmp_path)
    consent.record(
        consent.Publishing(
            collector_url="https://c.example/", proxy="socks5://u:secret@127.0.0.1:1080"
        ),
        method="--yes",
        path=path,
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    proc = subprocess.run(
        [*PROBE, "onboard", "--show"], env=_env(tmp_path), capture_output=True, text=True
    )
    assert "u:***@127.0.0.1:1080" in proc.stdout
    assert "secret" not in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "not a terminal"),
        (["--yes", "--collector", "ftp://x"], "collector URL must be http(s)"),
        (["--yes", "--proxy", "socks4://127.0.0.1:1"], "proxy must be"),
        (["--yes", "--proxy", "http://127.0.0.1"], "proxy must be"),
        (["--yes", "--text"], "not allowed with argument"),
    ],
)
def test_bad_use_fails_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [*PROBE, "onboard", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not _config(tmp_path).exists()


def test_invalid_config_file_is_never_rewritten(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("this is = = not toml\n")
    line = consent.check(path)
    assert line is not None and "not valid TOML" in line
    proc = subprocess.run(
        [*PROBE, "onboard", "--yes"], env=_env(tmp_path), capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr
    assert path.read_text() == "this is = = not toml\n"


def test_require_prints_one_line_and_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path)
    assert consent.require(path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "consent missing: run `probe onboard`" in err
    consent.record(consent.Publishing(), method="--yes", path=path)
    assert consent.require(path) is None
    assert capsys.readouterr().err == ""


def test_check_names_the_fix(tmp_path: Path) -> None:
    path = _config(tmp_path)
    missing = consent.check(path)
    assert missing is not None
    assert missing.startswith("probe run: error: consent missing: run `probe onboard`")
    assert "\n" not in missing
    configfile.update(
        path, {"consent": {"version": 0, "given": datetime(2020, 1, 1, tzinfo=UTC), "method": "x"}}
    )
    outdated = consent.check(path)
    assert outdated is not None and "older text (version 0" in outdated
    consent.record(consent.Publishing(), method="--yes", path=path)
    assert consent.check(path) is None
    path.write_text('[publish]\nupload = "yes"\n')
    bad = consent.check(path)
    assert bad is not None and "publish.upload must be true or false" in bad


@given(
    upload=st.booleans(),
    asn=st.booleans(),
    cc=st.booleans(),
    ip=st.booleans(),
    collector=st.sampled_from([None, "https://c.example/", "http://127.0.0.1:8080/x/"]),
    proxy=st.sampled_from([None, "socks5h://127.0.0.1:9050", "http://u:p@[::1]:3128"]),
)
def test_publishing_round_trips_through_the_file(
    tmp_path_factory: pytest.TempPathFactory,
    upload: bool,
    asn: bool,
    cc: bool,
    ip: bool,
    collector: str | None,
    proxy: str | None,
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    chosen = consent.Publishing(upload, collector, proxy, asn, cc, ip)
    recorded = consent.record(chosen, method="--yes", path=path)
    again, publishing = consent.load(path)
    assert publishing == chosen
    assert again == recorded


def test_help_lists_the_new_subcommands() -> None:
    proc = subprocess.run([*PROBE, "--help"], capture_output=True, text=True, check=True)
    for name in ("onboard", "upload", "collector"):
        assert f"\n    {name}" in proc.stdout


def test_the_text_says_where_measurements_go() -> None:
    """No collector is implied: the text names the one the volunteer gives, or none."""
    text = " ".join(consent.consent_text().split())
    assert "sent to the collector whose address you give" in text
    assert "sends nothing to one you did not name" in text
    assert consent.destination(consent.Publishing()) == (
        "Your measurements stay on this computer until you name a collector "
        "(`probe onboard --collector URL`); they wait there to be uploaded."
    )
    chosen = consent.Publishing(collector_url="https://c.example/", proxy="socks5h://u:pw@h:1")
    assert consent.destination(chosen) == (
        "Your measurements will be sent to the collector https://c.example/ through the proxy "
        "socks5h://u:***@h:1."
    )
