"""Every bad input is refused with one line and status 2, by every subcommand.

Numbers (NaN, infinities, negative, huge, not a number) for every numeric option of every
subcommand and of the config file; files (missing, a directory, binary, not UTF-8) for every
file option; URLs (length cap, credentials, zone ids, IDN, not a URL). What is accepted is
checked too: credentials are removed before measuring and recorded as removed, an IDN host
reaches the network as A-labels with the given form kept beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

from probe.inputs import MAX_URL_LENGTH, InputError, target_url
from probe.targets import Target, read_list, read_urls
from tests.hostile.cli import agree, assert_refused, probe_cli
from tests.unit.servers import http_server, response

BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "1e400", "9" * 400, "", "0x10", "ten"]

#: (argv before the option, option, extra argv after it) for every numeric option
NUMERIC_OPTIONS: list[tuple[list[str], str]] = [
    (["run", "--input", "http://127.0.0.1:9/"], "--limit"),
    (["run", "--input", "http://127.0.0.1:9/"], "--concurrency"),
    *[
        (["run", "--input", "http://127.0.0.1:9/"], f"--timeout-{name}")
        for name in ("dns", "connect", "tls", "http", "control", "target", "geolocate")
    ],
    (["analyze", "/nonexistent-input"], "--workers"),
    (["helper", "serve"], "--max-concurrency"),
    (["helper", "serve"], "--max-body"),
    (["helper", "serve"], "--max-endpoints"),
    (["helper", "serve"], "--burst"),
    (["helper", "serve"], "--body-cap"),
    # a bad --listen too: should an option's value get through, the refusal names --listen
    # (and the test fails) rather than a collector starting to serve
    *[
        (["collector", "serve", "--store", "/nonexistent-store", "--listen", "bad"], option)
        for option in (
            "--collector-id",
            "--roll-size",
            "--roll-interval",
            "--dedup-days",
            "--max-body",
            "--max-concurrency",
        )
    ],  # fmt: skip
    (["geoip", "update", "--base-url", "http://127.0.0.1:9/"], "--timeout"),
    (["fingerprints", "update", "--ooni-base-url", "http://127.0.0.1:9/"], "--timeout"),
    *[
        (["packet", "--input", "http://127.0.0.1:9/", "--address", "127.0.0.1"], option)
        for option in (
            "--max-ttl",
            "--max-packets",
            "--rate",
            "--timeout-connect",
            "--timeout-reply",
        )
    ],  # fmt: skip
]


#: values out of an option's range (the rest of the run's argv as in NUMERIC_OPTIONS)
OUT_OF_RANGE = [
    ("--concurrency", "0"),
    ("--concurrency", "1001"),
    ("--concurrency", "1.5"),
    ("--limit", "1e10"),
    ("--timeout-connect", "0"),
    ("--timeout-target", "86401"),
    ("--timeout-http", "1e-400"),
]
NUMERIC_CASES = [(p, o, v) for p, o in NUMERIC_OPTIONS for v in BAD_NUMBERS] + [
    (NUMERIC_OPTIONS[0][0], o, v) for o, v in OUT_OF_RANGE
]


@pytest.mark.parametrize(
    ("prefix", "option", "value"),
    NUMERIC_CASES,
    ids=[f"{p[0]} {o}={v[:12]}" for p, o, v in NUMERIC_CASES],
)
def test_bad_numbers_are_refused(
    prefix: list[str],
    option: str,
    value: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    argv = [*prefix, f"{option}={value}"]
    if prefix[0] == "run":
        argv += ["--output", str(tmp_path / "out.jsonl"), "--no-geolocate"]
    result = probe_cli(argv, capsys=capsys, monkeypatch=monkeypatch, volunteer=volunteer_env)
    assert_refused(result, option)
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()


@pytest.mark.parametrize(
    "value", ["nan/min", "inf/min", "-1/min", "1e400/min", "9" * 400 + "/min", "10/fortnight"]
)
def test_bad_rate_limits_are_refused(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = probe_cli(
        ["helper", "serve", "--rate-limit", value], capsys=capsys, monkeypatch=monkeypatch
    )
    assert_refused(result, "--rate-limit")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-3", "1e9", '"10"', "true"])
@pytest.mark.parametrize("name", ["connect", "target", "dns"])
def test_bad_numbers_in_the_config_file_are_refused(
    name: str,
    value: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[timeouts]\n{name} = {value}\n")
    agree(config, capsys=capsys, monkeypatch=monkeypatch)
    result = probe_cli(
        ["run", "--input", "http://127.0.0.1:9/", "--config", str(config)],
        capsys=capsys,
        monkeypatch=monkeypatch,
        volunteer=volunteer_env,
    )
    assert_refused(result, f"timeouts.{name}")


@pytest.mark.parametrize(
    "setting",
    [
        "public_ranges = 5",
        "public_ranges = ['198.18.0.0/15']",
        "timeouts = 'fast'",
        "timeouts = [1, 2]",
        "geolocate = 5",
        "geolocate = { enabled = 'yes' }",
        "geolocate = { stun_servers = 'stun.example:3478' }",
        "resolver = 53",
        "control_url = 5",
        "probe_cc = 7",
        "probe_asn = 'AS1e9'",
    ],
)
def test_settings_of_the_wrong_type_in_the_config_file_are_refused(
    setting: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(setting + "\n")
    agree(config, capsys=capsys, monkeypatch=monkeypatch)
    result = probe_cli(
        ["run", "--input", "http://127.0.0.1:9/", "--config", str(config)],
        capsys=capsys,
        monkeypatch=monkeypatch,
        volunteer=volunteer_env,
    )
    assert_refused(result)


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "127.0.0.1:nan", "nan", "[::1:80", ""])
def test_bad_listen_addresses_are_refused(
    listen: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = probe_cli(
        ["helper", "serve", "--listen", listen], capsys=capsys, monkeypatch=monkeypatch
    )
    assert_refused(result, "--listen")


# --- files ------------------------------------------------------------------------------------


def _file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"input-{kind}"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    elif kind == "latin1":
        path.write_bytes(
            "url = 'http://caf\u00e9.test/'\nname = 'd\u00e9j\u00e0'\n".encode("latin-1")
        )
    elif kind == "garbage":
        path.write_text("this is not what the option wants\n" * 3)
    return path


#: (argv builder, option, file kinds refused, words the message must contain)
FILE_OPTIONS = [
    ("run", "--config", ["missing", "directory", "binary", "latin1", "garbage"]),
    ("run", "--app-file", ["missing", "directory", "binary", "latin1", "garbage"]),
    ("run", "--list", ["missing", "directory", "binary", "latin1"]),
    ("run", "--ca-file", ["missing", "directory", "binary", "latin1", "garbage"]),
    ("run", "--asn-db", ["missing", "directory", "binary", "garbage"]),
    ("run", "--country-db", ["missing", "directory", "binary", "garbage"]),
    ("run", "--output", ["directory"]),
    ("run", "--resume", ["directory"]),
    ("helper", "--tls-cert", ["missing", "directory", "binary", "garbage"]),
    ("helper", "--ca-file", ["missing", "directory", "binary", "garbage"]),
    ("helper", "--asn-db", ["missing", "directory", "binary", "garbage"]),
    ("geoip-lookup", "--asn-db", ["missing", "directory", "binary", "garbage"]),
    ("geoip-lookup", "--country-db", ["missing", "directory", "binary", "garbage"]),
    ("analyze", "--fingerprints-dir", ["missing", "garbage"]),
    ("analyze", "--output", ["garbage"]),
    ("analyze", "PATH", ["missing"]),
    ("analyze-stdin", "--fingerprints-dir", ["missing", "garbage"]),
    ("report", "DATASET", ["missing", "garbage"]),
    ("report", "--html", ["directory"]),
    ("geoip-update", "--dir", ["garbage"]),
    ("fingerprints", "--dest", ["garbage"]),
    ("packet", "FILE", ["missing", "directory", "binary", "latin1"]),
    ("packet", "--asn-db", ["missing", "directory", "binary", "garbage"]),
    ("packet", "--output", ["directory"]),
    ("packet", "--web-output", ["directory"]),
]
FILE_CASES = [(cmd, opt, kind) for cmd, opt, kinds in FILE_OPTIONS for kind in kinds]


def _argv(command: str, option: str, path: Path, tmp_path: Path) -> list[str]:
    out = str(tmp_path / "out.jsonl")
    if command == "run":
        base = ["run", "--no-geolocate", "--input", "http://127.0.0.1:9/"]
        if option in ("--output", "--resume"):
            return [*base, option, str(path)]
        if option == "--list":
            return ["run", "--no-geolocate", "--list", str(path), "--output", out]
        if option in ("--asn-db", "--country-db"):
            return ["run", "--input", "http://127.0.0.1:9/", option, str(path), "--output", out]
        return [*base, option, str(path), "--output", out]
    if command == "helper":
        argv = ["helper", "serve", "--listen", "127.0.0.1:0", option, str(path)]
        if option == "--tls-cert":
            argv += ["--tls-key", str(path)]
        return argv
    if command == "packet":
        if option == "FILE":
            return ["packet", str(path), "--output", out]
        good = tmp_path / "good.jsonl"
        good.write_text("{}\n")
        return ["packet", str(good), option, str(path)]
    if command == "geoip-lookup":
        return ["geoip", "lookup", "192.0.2.1", option, str(path)]
    if command == "geoip-update":
        return ["geoip", "update", "--base-url", "http://127.0.0.1:9/", option, str(path)]
    if command == "fingerprints":
        return ["fingerprints", "update", "--ooni-base-url", "http://127.0.0.1:9/",
                "--cp-base-url", "http://127.0.0.1:9/", option, str(path)]  # fmt: skip
    if command == "analyze":
        good = tmp_path / "good.jsonl"
        good.write_text("{}\n")
        if option == "PATH":
            return ["analyze", str(path), "--output", str(tmp_path / "ds")]
        if option == "--output":
            return ["analyze", str(good), "--output", str(path)]
        return ["analyze", str(good), "--output", str(tmp_path / "ds"), option, str(path)]
    if command == "analyze-stdin":
        return ["analyze", "--stdin", option, str(path)]
    if command == "report":
        if option == "DATASET":
            return ["report", str(path), "--query", "counts"]
        dataset = tmp_path / "dataset"
        dataset.mkdir(exist_ok=True)
        return ["report", str(dataset), "--html", str(path)]
    raise AssertionError(command)


@pytest.mark.parametrize(
    ("command", "option", "kind"), FILE_CASES, ids=[" ".join(c) for c in FILE_CASES]
)
def test_bad_files_are_refused(
    command: str,
    option: str,
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no geolocation database
    path = _file(tmp_path, kind)
    result = probe_cli(
        _argv(command, option, path, tmp_path),
        capsys=capsys,
        monkeypatch=monkeypatch,
        volunteer=volunteer_env if command == "run" else None,
    )
    assert_refused(result, str(path))
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()


def test_binary_and_latin1_files_name_the_offset(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    for kind, needle in (("binary", "binary file (a NUL byte at offset 7)"),
                         ("latin1", "not UTF-8 text (byte 0xe9 at offset 17)")):  # fmt: skip
        path = _file(tmp_path, kind)
        result = probe_cli(
            ["run", "--input", "http://127.0.0.1:9/", "--config", str(path)],
            capsys=capsys,
            monkeypatch=monkeypatch,
            volunteer=volunteer_env,
        )
        assert_refused(result, needle)


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("not a url", "white space"),
        ("not-a-url", "unsupported scheme"),
        ("ftp://example.org/", "unsupported scheme"),
        ("http://", "no host"),
        ("http://[fe80::1%25eth0]/", "zone ids"),
        ("http://[fe80::1%eth0]:8080/x", "zone ids"),
        ("http://exa mple.org/", "white space"),
        ("http://example.org:0/", "port 0"),
        ("http://example.org:99999/", "invalid URL"),
        ("http://\u2603.net/", "internationalised"),
        ("http://a..b\u00e9/", "internationalised"),
        ("http://[::1/", "invalid URL"),
        ("https://example.org/" + "a" * MAX_URL_LENGTH, "longer than 4096"),
    ],
)
def test_bad_input_urls_are_refused(
    url: str,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    out = tmp_path / "o.jsonl"
    result = probe_cli(
        ["run", "--no-geolocate", "--input", url, "--output", str(out)],
        capsys=capsys,
        monkeypatch=monkeypatch,
        volunteer=volunteer_env,
    )
    assert_refused(result, "--input", needle)
    assert not out.exists() or not out.read_text()


def test_a_ten_megabyte_url_is_refused_without_echoing_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    url = "http://example.org/" + "x" * (10 << 20)
    result = probe_cli(
        ["run", "--no-geolocate", "--input", url, "--output", str(tmp_path / "o.jsonl")],
        capsys=capsys,
        monkeypatch=monkeypatch,
        volunteer=volunteer_env,
    )
    assert_refused(result, "longer than 4096")


def test_a_list_with_no_measurable_target_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    targets = tmp_path / "list.txt"
    targets.write_text("not a url\nhttp://" + "y" * (10 << 20) + ".test/\nftp://x/\n")
    result = probe_cli(
        ["run", "--no-geolocate", "--list", str(targets), "--output", str(tmp_path / "o.jsonl")],
        capsys=capsys,
        monkeypatch=monkeypatch,
        volunteer=volunteer_env,
    )
    assert_refused(result, "no measurable target")


def test_idn_hosts_become_a_labels_and_the_given_form_is_kept() -> None:
    checked = target_url("https://пример.рф/путь?q=ü#frag")
    assert checked.url == "https://xn--e1afmkfd.xn--p1ai/%D0%BF%D1%83%D1%82%D1%8C?q=%C3%BC#frag"
    assert checked.given == "https://пример.рф/путь?q=ü#frag"
    assert checked.notes() == {"given": "https://пример.рф/путь?q=ü#frag"}
    assert target_url("https://faß.de/").url == "https://xn--fa-hia.de/"
    (item,) = list(read_urls(["http://bücher.example/"]))
    assert isinstance(item, Target)
    assert item.url == "http://xn--bcher-kva.example/"
    assert item.notes == {"given": "http://bücher.example/"}
    plain = target_url("https://www.example.org/a?b=c")
    assert plain.given == "" and plain.notes() == {}


def test_credentials_are_stripped_and_only_their_removal_is_noted(tmp_path: Path) -> None:
    checked = target_url("https://alice:s3cr3t@example.org:8443/x")
    assert checked.url == "https://example.org:8443/x"
    assert checked.credentials_removed and checked.notes() == {"credentials_removed": True}
    assert "s3cr3t" not in repr(checked) and "alice" not in repr(checked)
    listed = tmp_path / "l.txt"
    listed.write_text("http://bob:hunter2@example.org/  NEWS\n", encoding="utf-8")
    (item,) = list(read_list(listed))
    assert isinstance(item, Target)
    assert item.url == "http://example.org/" and item.credentials_removed
    assert "hunter2" not in repr(item)
    with pytest.raises(InputError):
        target_url("http://user:pw@[fe80::1%25lo]/")


async def test_credentials_never_reach_the_server_nor_the_measurement(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    """A real run (subprocess) of a URL with ``user:pass@``: measured without them."""
    page = b"<html><head><title>x</title></head><body>hi</body></html>"
    out = tmp_path / "out.jsonl"
    async with http_server([response(page)]) as web:
        url = f"http://alice:s3cr3t@{web.address}/path"
        proc = await trio.run_process(
            [sys.executable, "-m", "probe", "run", "--input", url, "--output", str(out),
             "--no-control", "--no-geolocate", "--public-ranges", "127.0.0.0/8",
             "--no-progress", "--timeout-target", "20"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=volunteer_env,
        )  # fmt: skip
        sent = b"".join(web.requests)
    assert proc.returncode == 0, proc.stderr.decode()
    line = out.read_text()
    msmt = json.loads(line)
    assert msmt["input"] == f"http://{web.address}/path"
    assert msmt["test_keys"]["x_input"] == {"credentials_removed": True}
    assert msmt["test_keys"]["requests"][0]["response"]["code"] == 200
    for secret in ("s3cr3t", "alice", "YWxpY2U6czNjcjN0"):  # the last: base64 of alice:s3cr3t
        assert secret not in line
        assert secret.encode() not in sent
    assert b"authorization" not in sent.lower()
