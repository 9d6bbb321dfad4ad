"""`probe packet`: bad options in one line, and without raw sockets one line and nothing else.

The unprivileged path is exercised for real: the command runs in a child that lost CAP_NET_RAW
(root drops it from its bounding set before exec; a non-root user never had it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from probe.cli import main
from probe.packet.privilege import unavailable
from tests.lab.fixtures import drop_net_raw

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "results" / "samples" / "lab-demo.jsonl"
NOTICE = (
    "probe packet: packet-level test skipped: it needs root or CAP_NET_RAW (raw sockets); "
    "everything else runs as usual"
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give web measurement files, or --input URL --address IP"),
        (["--input", "https://x.example/"], "--input needs --address"),
        (
            ["--input", "https://x.example/", "--address", "x.example"],
            "not an IPv4 address: 'x.example'",
        ),
        (
            [str(DEMO), "--input", "https://x.example/"],
            "give either measurement files or --input, not both",
        ),
        (["/nonexistent.jsonl"], "cannot read web measurements /nonexistent.jsonl: no such file"),
        ([str(DEMO), "--probe-asn", "ASx"], "--probe-asn must look like AS12389, got 'ASx'"),
        ([str(DEMO), "--dns-server", "8.8.8.8"], "--dns-server must be IP:PORT, got '8.8.8.8'"),
        ([str(DEMO), "--public-ranges", "nope"], "--public-ranges: not a CIDR range: 'nope'"),
    ],
)
def test_bad_options_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["packet", *argv]) == 2
    assert capsys.readouterr().err == f"probe packet: error: {message}\n"


def _probe_packet(*argv: str, unprivileged: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", "packet", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=drop_net_raw if unprivileged else None,  # noqa: PLW1509 - single-threaded
    )


def test_without_raw_sockets_one_line_and_the_web_measurements_unchanged(tmp_path: Path) -> None:
    web, packets = tmp_path / "web.jsonl", tmp_path / "packets.jsonl"
    proc = _probe_packet(
        str(DEMO), "--web-output", str(web), "--output", str(packets), unprivileged=True
    )
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [NOTICE]
    assert proc.stdout == ""
    assert web.read_bytes() == DEMO.read_bytes()
    assert not packets.exists()


def test_nothing_blocked_nothing_sent(tmp_path: Path) -> None:
    """With privileges, measurements whose verdicts ask for no follow-up send nothing and are
    copied unchanged."""
    if unavailable() is not None:
        pytest.skip(f"needs raw sockets: {unavailable()}")
    lines = DEMO.read_text(encoding="utf-8").splitlines()
    quiet = [x for x in lines if json.loads(x)["test_keys"]["x_outcome"] in ("ok", "dns/nxdomain")]
    source = tmp_path / "quiet.jsonl"
    source.write_text("".join(x + "\n" for x in quiet), encoding="utf-8")
    web, packets = tmp_path / "web.jsonl", tmp_path / "packets.jsonl"
    proc = _probe_packet(
        str(source), "--web-output", str(web), "--output", str(packets), unprivileged=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("probe packet: 0 target(s) traced")
    assert web.read_bytes() == source.read_bytes()
    assert packets.read_text() == ""


# --- probe run --packet-level -------------------------------------------------------------------

RUN_NOTICE = NOTICE.replace("probe packet:", "probe run:", 1)


def _probe_run(
    output: Path, *extra: str, unprivileged: bool, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`probe run` of one loopback URL nobody listens on (a special-purpose literal: the
    user's own choice, so the connect policy lets it be contacted), no control, no geolocation,
    as a volunteer who consented (``env``: the ``volunteer_env`` fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "probe", "run", "--input", "http://127.80.61.9:9/", "--no-control",
         "--no-geolocate", "--no-progress", "--output", str(output), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
        preexec_fn=drop_net_raw if unprivileged else None,  # noqa: PLW1509 - single-threaded
    )  # fmt: skip


def _timeless(text: str) -> list[str]:
    return [re.sub(r"\d+\.\d+s", "<t>", line) for line in text.splitlines()]


def test_run_packet_level_without_raw_sockets_says_so_once(
    tmp_path: Path, volunteer_env: dict[str, str]
) -> None:
    env = volunteer_env
    plain = _probe_run(tmp_path / "plain.jsonl", unprivileged=True, env=env)
    packet = _probe_run(tmp_path / "packet.jsonl", "--packet-level", unprivileged=True, env=env)
    assert plain.returncode == packet.returncode == 0, packet.stderr
    assert _timeless(packet.stderr) == [RUN_NOTICE, *_timeless(plain.stderr)]
    assert _timeless(packet.stdout.replace("packet.jsonl", "plain.jsonl")) == _timeless(
        plain.stdout
    )
    a, b = (json.loads((tmp_path / f"{n}.jsonl").read_text()) for n in ("plain", "packet"))
    assert sorted(a["test_keys"]) == sorted(b["test_keys"])
    for key in ("blocking", "accessible", "x_outcome", "x_rule_id", "x_evidence"):
        assert a["test_keys"][key] == b["test_keys"][key], key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packet.jsonl", "plain.jsonl"]


def test_run_packet_level_follows_web_targets_only(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    volunteer_env: dict[str, str],
) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):  # a volunteer who consented
        monkeypatch.setenv(name, volunteer_env[name])
    assert main(["run", "--app", "signal", "--packet-level", "--no-geolocate"]) == 2
    assert capsys.readouterr().err == (
        "probe run: error: --packet-level follows up web targets (--input, --list), not --app\n"
    )
