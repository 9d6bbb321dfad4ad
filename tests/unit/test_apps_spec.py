"""App files: the built-in ones and the lab variants load; every mistake names file and key."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

import pytest
import trustme

from probe.apps.spec import (
    OONI_COMPONENTS,
    AppSpecError,
    load_app_file,
    load_builtin_apps,
    repo_apps_dir,
)
from probe.plan import AppWork

LAB_APPS = Path(__file__).resolve().parents[1] / "lab" / "apps"
LAB_NET = ipaddress.ip_network("198.18.0.0/15")


def test_builtin_apps_all() -> None:
    apps = load_builtin_apps(["all"])
    names = [a.name for a in apps]
    assert names == ["facebook_messenger", "linkedin", "signal", "telegram", "whatsapp"]
    by_name = {a.name: a for a in apps}
    assert [a.url for a in AppWork(tuple(apps)).items()] == [f"app:{n}" for n in names]
    # OONI's targets, as the specs list them
    wa = by_name["whatsapp"]
    endpoints = [h for h in wa.hosts if h.component == "endpoints"]
    assert len(endpoints) == 16 and all(h.ports == [443, 5222] for h in endpoints)
    tg = by_name["telegram"]
    dcs = [h for h in tg.hosts if h.component == "dc"]
    assert [h.host for h in dcs][0] == "149.154.175.50" and len(dcs) == 6
    assert all(h.url(443) == f"http://{h.host}:443/" and h.method == "POST" for h in dcs)
    sig = by_name["signal"]
    assert sig.ca_file is not None and Path(sig.ca_file).is_file()
    assert {h.host for h in sig.hosts if h.trust == "app"} == {
        "cdsi.signal.org", "chat.signal.org", "sfu.voip.signal.org", "storage.signal.org"
    }  # fmt: skip
    assert by_name["linkedin"].ooni_test is None
    fb = by_name["facebook_messenger"]
    assert {h.component for h in fb.hosts} == OONI_COMPONENTS["facebook_messenger"]


def test_signal_ca_bundle_holds_two_roots() -> None:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(repo_apps_dir() / "signal-ca.pem"))
    subjects = [str(cert["subject"]) for cert in ctx.get_ca_certs()]
    assert len(subjects) == 2
    assert "'commonName', 'TextSecure'" in subjects[0]
    assert "'commonName', 'Signal Messenger'" in subjects[1]


def test_unknown_and_duplicate_names() -> None:
    with pytest.raises(AppSpecError, match=r"unknown app 'icq'; valid names: .*linkedin.*all"):
        load_builtin_apps(["icq"])
    assert [a.name for a in load_builtin_apps(["signal", "signal", "telegram"])] == [
        "signal",
        "telegram",
    ]


def test_missing_builtin_folder(tmp_path: Path) -> None:
    with pytest.raises(AppSpecError, match="built-in app files are missing"):
        load_builtin_apps(["all"], directory=tmp_path / "nope")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name = 'x'\ntitle = 'X'\n", r"hosts: Field required"),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = 'a.test'\nports = [0]\n",
            r"hosts\[0\] \(id 'a'\)\.ports\[0\]: Input should be greater than or equal to 1",
        ),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = 'a.test'\nstage = 'quic'\n",
            r"hosts\[0\] \(id 'a'\)\.stage",
        ),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = 'a.test'\nporst = [1]\n",
            r"hosts\[0\] \(id 'a'\)\.porst: Extra inputs are not permitted",
        ),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = 'a.test'\n"
            "[[hosts]]\nid = 'a'\nhost = 'b.test'\n",
            r"hosts\[1\] \(id 'a'\)\.id: duplicate id",
        ),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = 'a.test'\ntrust = 'app'\n",
            r"\.trust: \"app\" needs a top-level ca_file",
        ),
        (
            "name = 'x'\ntitle = 'X'\nooni_test = 'signal'\n[[hosts]]\nid = 'a'\n"
            "host = 'a.test'\ncomponent = 'dc'\n",
            r"\.component: 'dc' is not a signal component \(backend, uptime\)",
        ),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = '10.0.0.1'\nstage = 'dns'\n",
            r"\.stage: a fixed address has no DNS stage",
        ),
        (
            "name = 'x'\ntitle = 'X'\n[[hosts]]\nid = 'a'\nhost = 'bad name!'\n",
            r"\.host: Value error, not a host name or IP address",
        ),
        (
            "name = 'x'\ntitle = 'X'\nca_file = 'none.pem'\n[[hosts]]\nid = 'a'\nhost = 'a.test'\n",
            r"ca_file: .*none.pem does not exist",
        ),
        ("name = 'x\n", r"not valid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(body)
    with pytest.raises(AppSpecError, match=message) as info:
        load_app_file(path)
    text = str(info.value)
    assert text.startswith(f"app file {path}: ") and "\n" not in text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AppSpecError, match="no such file"):
        load_app_file(tmp_path / "absent.toml")


def _lab_files(tmp_path: Path) -> list[Path]:
    """The lab variants; Signal's is copied next to a generated Signal lab CA, as the lab does."""
    out = []
    for path in sorted(LAB_APPS.glob("*.toml")):
        if path.name == "signal.toml":
            shutil.copy(path, tmp_path / path.name)
            trustme.CA().cert_pem.write_to_path(str(tmp_path / "signal-lab-ca.pem"))
            path = tmp_path / path.name
        out.append(path)
    return out


def test_lab_variants_use_only_lab_addresses_and_names(tmp_path: Path) -> None:
    builtin_names = {a.name for a in load_builtin_apps(["all"])}
    files = _lab_files(tmp_path)
    # every real app has a lab variant; lab-only apps (e.g. the outage case) may be added
    assert builtin_names <= {p.stem for p in files}
    for path in files:
        app = load_app_file(path)
        for host in app.hosts:
            if host.is_ip:
                assert ipaddress.ip_address(host.host) in LAB_NET, (path, host.id)
            else:
                assert host.host.endswith(".app.lab.test"), (path, host.id)
        if app.name not in builtin_names:
            continue
        builtin = load_builtin_apps([app.name])[0]
        assert app.ooni_test == builtin.ooni_test
        for host in app.hosts:
            if host.is_ip:
                assert ipaddress.ip_address(host.host) in LAB_NET, (path, host.id)
            else:
                assert host.host.endswith(".app.lab.test"), (path, host.id)
            for net in host.expected_networks:
                assert ipaddress.ip_network(net).subnet_of(LAB_NET)  # type: ignore[arg-type]
        # same components as the real app, so the OONI keys mean the same thing
        assert {h.component for h in app.hosts} == {h.component for h in builtin.hosts}
