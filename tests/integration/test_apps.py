"""The probe's app tests in the censorship lab (issue 6): per-host and per-app verdicts.

One probe run from cp-client over every lab app file (``probe run --app-file
tests/lab/apps/<app>.toml`` for each [[app_scenario]] of scenarios.toml), with the control vantage
in cp-inet, and the web test of the seed case's website. We assert each (host, port) row's
outcome and blocking flag (``x_hosts``), the app verdict, OONI's keys, that an outage is not
called censorship, that oonidata loads every measurement strictly, and the seed case exactly:
LinkedIn's website blocked by a blockpage while the app's API hosts answer. The per-host table
is printed (pytest -s).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.conformance.check import check_with_oonidata
from tests.lab import applab
from tests.lab import lab as labmod
from tests.lab import model as m
from tests.lab.demo_apps import (
    SEED_APP,
    AppOutcome,
    report,
    run_apps,
    run_seed_website,
    seed_problems,
)

pytestmark = pytest.mark.lab

APP_SCENARIOS = m.load_app_scenarios()


@pytest.fixture(scope="module")
def runs(
    lab: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    lab_report: Callable[[str], None],
) -> tuple[dict[str, AppOutcome], dict[str, Any]]:
    labmod.control_start()
    tmp = tmp_path_factory.mktemp("lab-apps")
    outcomes = run_apps(lab, tmp / "apps.jsonl")
    website = run_seed_website(lab, tmp / "seed.jsonl")
    lab_report(report(outcomes, website))
    return {o.scenario.id: o for o in outcomes}, website


@pytest.fixture(scope="module")
def apps(runs: tuple[dict[str, AppOutcome], dict[str, Any]]) -> dict[str, AppOutcome]:
    return runs[0]


@pytest.mark.parametrize("scenario", APP_SCENARIOS, ids=[s.id for s in APP_SCENARIOS])
def test_app_scenario(apps: dict[str, AppOutcome], scenario: m.AppScenario) -> None:
    assert apps[scenario.id].mismatches() == []


def test_seed_case_website_blocked_while_app_api_hosts_answer(
    runs: tuple[dict[str, AppOutcome], dict[str, Any]],
) -> None:
    apps, website = runs
    tk = website["test_keys"]
    assert website["input"] == "http://www.linkedin.app.lab.test/"
    assert (tk["blocking"], tk["accessible"], tk["x_outcome"]) == (
        "http-diff",
        False,
        "http/blockpage",
    )
    linkedin = apps[SEED_APP]
    assert linkedin.keys["x_app_verdict"] == "accessible"
    assert [r["outcome"] for r in linkedin.rows] == ["ok"] * len(linkedin.rows)
    assert {r["id"] for r in linkedin.rows} == set(linkedin.scenario.hosts)
    website_row = next(r for r in linkedin.rows if r["id"] == "website")
    assert (website_row["port"], website_row["http_status"]) == (443, 200)
    assert seed_problems(website, list(apps.values())) == []


def test_an_outage_is_not_censorship(apps: dict[str, AppOutcome]) -> None:
    outage = apps["app-outage"]
    down = [r for r in outage.rows if r["outcome"] == "down/everywhere"]
    assert {r["id"] for r in down} == {"retired", "sunk"}
    assert all(r["blocking"] is False for r in down)
    # the control failed the same way, at the same stage
    assert {r["id"]: r["control"]["tcp"] for r in down} == {
        "retired": "connection_refused_error",
        "sunk": "generic_timeout_error",
    }
    assert outage.measurement["test_name"] == "app_endpoints"
    assert outage.measurement["input"] == "app:outage"
    for o in apps.values():
        for row in o.rows:
            if row["outcome"] == "down/everywhere":
                assert row["blocking"] is False, (o.scenario.id, row["id"])


def _issuer_cn(handshake: dict[str, Any]) -> str:
    der = base64.b64decode(handshake["peer_certificates"][0]["data"])
    cert = x509.load_der_x509_certificate(der)
    return str(cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_signal_hosts_are_trusted_only_through_the_signal_lab_ca(
    apps: dict[str, AppOutcome],
) -> None:
    tk = apps["app-signal"].keys
    by_host: dict[str, list[dict[str, Any]]] = {}
    for hs in tk["tls_handshakes"]:
        host = next(t for t in hs["tags"] if t.startswith("x_app_host=")).split("=", 1)[1]
        by_host.setdefault(host, []).append(hs)
    for host in ("chat", "sfu"):
        (hs,) = by_host[host]
        assert hs["failure"] is None and _issuer_cn(hs) == applab.SIGNAL_CA_NAME
    (storage,) = by_host["storage"]
    assert storage["failure"] == "ssl_unknown_authority"
    assert _issuer_cn(storage) == applab.CENSOR_CA_NAME  # the interception server's leaf
    # the control (outside the ISP) reached the real storage server
    row = next(r for r in apps["app-signal"].rows if r["id"] == "storage")
    assert row["control"]["tcp"] == "ok"


def test_telegram_data_centres_are_lab_addresses(apps: dict[str, AppOutcome]) -> None:
    endpoints = {e["ip"] for e in apps["app-telegram"].keys["tcp_connect"]}
    dcs = {f"198.19.2.{n}" for n in range(31, 37)}
    assert dcs <= endpoints
    assert all(ip.startswith("198.19.2.") for ip in endpoints)


def test_app_measurements_load_strictly_with_oonidata(
    runs: tuple[dict[str, AppOutcome], dict[str, Any]],
) -> None:
    apps, website = runs
    lines = [json.dumps(o.measurement) for o in apps.values()] + [json.dumps(website)]
    assert check_with_oonidata(lines) == []


def test_client_address_never_appears(
    lab: dict[str, Any], runs: tuple[dict[str, AppOutcome], dict[str, Any]]
) -> None:
    apps, website = runs
    for msmt in [o.measurement for o in apps.values()] + [website]:
        assert lab["client_address"] not in json.dumps(msmt)
        assert msmt["probe_ip"] == "127.0.0.1"


def test_report_lists_every_host(apps: dict[str, AppOutcome]) -> None:
    text = report(list(apps.values()))
    assert f"{len(apps)}/{len(apps)} app scenarios as expected" in text
    for o in apps.values():
        for host_id in o.scenario.hosts:
            assert host_id in text
