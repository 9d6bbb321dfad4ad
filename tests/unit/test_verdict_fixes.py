"""The recurring mistakes of issue 16, each on a real (or captured) measurement.

Every test here fails on the rules of 2026.11.1 and passes on 2026.12.2: the measurement, the
wrong verdict it used to get and the rule that now decides are named in each test. The real
files come from the corpus (tests/corpus/manifest.toml says where each one comes from), our
own captures from the lab and targeted goldens (tests/goldens).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from probe.analysis import RULES, RULES_VERSION, analyze
from probe.analysis.fingerprints import builtin
from probe.analysis.rules import RETIRED
from tests import corpus
from tests.goldens import targeted, tiers
from tests.unit.test_analysis_rules import HOST, IP, _control, _request, measurement

BY_ID = {e.id: e for e in corpus.entries()}


def _corpus(entry_id: str) -> dict[str, Any]:
    return corpus.strip_verdict(corpus.load(BY_ID[entry_id]))


def _verdict(m: dict[str, Any]) -> tuple[Any, Any, str, str]:
    v = analyze(m, fingerprints=builtin())
    return v["blocking"], v["accessible"], v["x_outcome"], v["x_rule_id"]


# --- 1. a control that did not really resolve -------------------------------------------------


def test_cname_only_control_whose_fetch_failed_did_not_resolve() -> None:
    """SK, www.wikispaces.com: the control's answer is a CNAME and its fetch failed with
    dns_lookup_error. Before: dns/nxdomain (blocking "dns"); after: down everywhere."""
    m = _corpus("backend-requests_none")
    v = analyze(m)
    assert (v["blocking"], v["accessible"], v["x_outcome"]) == (False, False, "down/everywhere")
    assert v["x_rule_id"] == "down.dns_control_no_address"
    assert v["dns_consistency"] == "consistent"
    assert "control.dns" in v["x_evidence"]


def test_cname_only_control_whose_fetch_worked_did_resolve() -> None:
    m = _corpus("backend-requests_none")
    http = m["test_keys"]["control"]["http_request"]
    http.update(failure=None, status_code=200, body_length=1000)
    assert _verdict(m)[2] == "dns/nxdomain"


# --- 2. unexpected addresses although the control's own lookup or handshake failed -------------


def _nxdomain_rewritten(*, canary: list[str] | None) -> dict[str, Any]:
    """The control gets NXDOMAIN; the probe's resolver answers 82.96.64.2, whose server answers
    a search page (the shape of ISP NXDOMAIN rewriting)."""
    m = measurement(scheme="http", answers=("82.96.64.2",), asn=3320)
    tk = m["test_keys"]
    tk["control"] = _control(addrs=())
    tk["control"]["dns"] = {"failure": "dns_name_error", "addrs": []}
    tk["control"]["http_request"] = {
        "body_length": -1, "failure": "dns_lookup_error", "title": "", "headers": {},
        "status_code": -1,
    }  # fmt: skip
    search = "<html><head><title>Search results</title></head><body>did you mean</body></html>"
    tk["requests"] = [
        _request(f"http://{HOST}/", "82.96.64.2:80", ["depth=0", "classic"], 3, search)
    ]
    if canary is not None:
        tk["x_nxdomain_canary"] = {
            "version": 1,
            "hostname": "cp-5f1d2c3b4a596877.com",
            "failure": None if canary else "dns_nxdomain_error",
            "addresses": canary,
        }
    return m


def test_nxdomain_rewriting_shown_by_the_canary_is_not_censorship() -> None:
    """Before: dns/unexpected-address (the canary was ignored); after: down everywhere."""
    b, a, outcome, rule = _verdict(_nxdomain_rewritten(canary=["82.96.64.2"]))
    assert (b, a, outcome, rule) == (False, False, "down/everywhere", "down.dns_nxdomain_rewritten")


def test_without_the_canary_a_dead_name_still_answered_is_ghost_blocking() -> None:
    """OONI's ghostDNSBlocking*: a censor may keep answering its blockpage address for a name
    on its list that no longer exists; without the canary we cannot tell, and keep "dns"."""
    assert _verdict(_nxdomain_rewritten(canary=None))[0] == "dns"
    assert _verdict(_nxdomain_rewritten(canary=[]))[0] == "dns"  # the resolver is honest
    assert _verdict(_nxdomain_rewritten(canary=["82.96.64.9"]))[0] == "dns"  # another address


def test_the_same_tls_failure_everywhere_is_no_dns_lie() -> None:
    """PK, mask.icloud.com (ooni/probe#2517): eof_error at the probe's Akamai addresses and at
    the control's own Apple ones. Before: dns/unexpected-address; after: down everywhere."""
    m = _corpus("probecli-PK-19f5e0d803cbaea7")
    b, a, outcome, rule = _verdict(m)
    assert (b, a, outcome, rule) == (False, False, "down/everywhere", "down.tls_failed_alike")


def test_an_address_difference_with_working_control_handshakes_stays_dns() -> None:
    m = _corpus("probecli-PK-19f5e0d803cbaea7")
    ctrl = m["test_keys"]["control"]
    for ep, result in ctrl["tls_handshake"].items():
        if ep.startswith("17.248."):
            result.update(status=True, failure=None)
    assert _verdict(m)[2] == "dns/unexpected-address"


# --- 3. one meaning for a server error delivered intact ----------------------------------------


def _server_error(scheme: str, *, control_status: int) -> dict[str, Any]:
    m = measurement(scheme=scheme, control=_control(status=control_status))
    m["test_keys"]["requests"][0]["response"]["code"] = 503
    return m


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_503_to_everyone_is_down_over_both_schemes(scheme: str) -> None:
    """Before: ok over https (ok.https fired first), down/server-error over http."""
    b, a, outcome, _ = _verdict(_server_error(scheme, control_status=503))
    assert (b, a, outcome) == (False, False, "down/server-error")


def test_a_503_over_validated_tls_is_the_server_s_even_if_the_control_got_200() -> None:
    assert _verdict(_server_error("https", control_status=200))[2:] == (
        "down/server-error",
        "down.server_error_tls",
    )
    # in cleartext the network may have written it: a diff, as before
    assert _verdict(_server_error("http", control_status=200))[2] == "http/diff"


def test_a_cdn_challenge_served_with_503_is_not_a_server_error() -> None:
    qa = corpus.SHARED / "ooni-qa" / "cloudflareCAPTCHAWithHTTPS" / "measurement.json"
    m = corpus.strip_verdict(json.loads(qa.read_text(encoding="utf-8")))
    assert _verdict(m)[:3] == (False, True, "ok")


# --- 4. no control, wrong certainty ------------------------------------------------------------


#: targeted goldens (tests/goldens/targeted.py): servers that misbehave, measured without control
NO_CONTROL = ("server-http09-no-control", "server-stalls-no-control",
              "server-resets-huge-request-no-control")  # fmt: skip


@pytest.mark.parametrize("case", NO_CONTROL)
def test_a_misbehaving_server_without_control_is_not_ip_blocked(case: str) -> None:
    """Before: tcp/ip-blocked (the innocuous-Host retry failed too)."""
    m = tiers.Case("targeted", case, tiers.GOLDENS / "targeted" / case / tiers.MEASUREMENT)
    b, a, outcome, _ = _verdict(corpus.strip_verdict(m.measurement()))
    assert (b, a, outcome) == (None, None, "unknown/control-unavailable")


@pytest.mark.parametrize("case", NO_CONTROL)
def test_the_same_servers_measured_again(case: str) -> None:
    (spec,) = [c for c in targeted.CASES if c.name == case]
    m = targeted.capture(spec)
    tags = [r["tags"] for r in m["test_keys"]["requests"]]
    assert ["depth=0", "x_diag=host_retry"] in tags  # the diagnostic ran, and failed too
    assert _verdict(corpus.strip_verdict(m))[2] == "unknown/control-unavailable"


def _host_blocked(*, control_ok: bool, server_bytes: int) -> dict[str, Any]:
    m = measurement(scheme="http")
    tk = m["test_keys"]
    tk["requests"][0].update(failure="connection_reset")
    tk["requests"][0]["response"] = {"code": 0, "body": "", "headers": None}
    diag = _request(f"http://{IP}/", f"{IP}:80", ["depth=0", "x_diag=host_retry"], 10)
    diag.update(failure="connection_reset", response={"code": 0, "body": "", "headers": None})
    tk["requests"].insert(0, diag)
    tk["network_events"] = [
        {"operation": "bytes_received_cumulative", "t": 0.5, "num_bytes": server_bytes,
         "transaction_id": tid, "tags": []}
        for tid in (3, 10)
    ]  # fmt: skip
    if not control_ok:
        tk["control"], tk["control_failure"] = {}, "generic_timeout_error"
    return m


def test_ip_blocking_needs_the_control_and_a_silent_server() -> None:
    b, _, outcome, rule = _verdict(_host_blocked(control_ok=True, server_bytes=0))
    assert (b, outcome, rule) == ("tcp_ip", "tcp/ip-blocked", "tcp.ip_blocked_host_diag_control")
    assert _verdict(_host_blocked(control_ok=False, server_bytes=0))[2] == (
        "unknown/control-unavailable"
    )
    # the server sent bytes before the reset: the path to the address works
    assert _verdict(_host_blocked(control_ok=True, server_bytes=24))[2] == (
        "http/reset-after-request"
    )


# --- the table: retired ids keep their meaning ---------------------------------------------------

#: every rule id of RULES_VERSION 2026.11.1: each must still be in the table or listed as retired
IDS_2026_11_1 = (
    "input.unusable", "dns.injected_duplicate", "dns.blockpage_ip",
    "dns.unexpected_address_blockpage", "http.redirect_to_blockpage", "http.blockpage",
    "tls.sni_diag_reset", "tls.sni_diag_timeout", "tcp.ip_blocked_sni_diag", "http.throttled",
    "http.host_diag_reset", "http.host_diag_timeout", "tcp.ip_blocked_host_diag", "dns.nxdomain",
    "dns.failure", "down.dns", "dns.bogon", "down.dns_bogon_everywhere", "ok.https",
    "down.server_error", "ok.http_matches_control", "dns.unexpected_address", "http.benign_page",
    "unknown.control_unavailable", "unknown.probe_no_ipv6", "dns.later_hop_nxdomain",
    "dns.later_hop_failure", "tcp.timeout", "tcp.refused", "tcp.unreachable", "tcp.other",
    "tls.reset", "tls.timeout", "tls.eof", "tls.certificate", "tls.other", "http.reset",
    "http.eof", "http.body_timeout", "http.timeout", "http.invalid_redirect", "http.other",
    "down.step_failed_everywhere", "http.diff", "unknown.undetermined",
)  # fmt: skip


def test_no_rule_id_disappears_or_comes_back() -> None:
    live = {r.rule_id for r in RULES}
    retired = {r.rule_id for r in RETIRED}
    assert not live & retired
    assert set(IDS_2026_11_1) <= live | retired
    assert len(retired) == len(RETIRED)
    for r in RETIRED:
        assert r.replaced_by and set(r.replaced_by) <= live, r.rule_id
        assert r.reason and r.last_version < RULES_VERSION


def test_probe_cancelled_round_trips_are_not_the_final_response() -> None:
    """IT 2023, a development build: 28 round trips the probe cancelled itself around one 200.
    Before: http/failure (the newest request, cancelled, was taken as final)."""
    m = _corpus("probecli-pipeline-youtube")
    assert _verdict(m)[:3] == (False, True, "ok")
    first = copy.deepcopy(m)
    first["test_keys"]["requests"] = [
        r for r in first["test_keys"]["requests"] if r["failure"] is not None
    ]
    assert _verdict(first)[0] is not False  # with no answer at all it is no success


def test_the_docs_rule_table_is_the_code_s() -> None:
    text = (corpus.REPO / "docs" / "verdicts.md").read_text(encoding="utf-8")
    section = text.split("## Rules (first match wins; RULES_VERSION ", 1)[1].split("\n## ", 1)[0]
    assert section.startswith(RULES_VERSION)
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    assert [r[0][3:-1] for r in rows] == [rule.rule_id for rule in RULES]
    for row, rule in zip(rows, RULES, strict=True):
        assert row[1] == f"`{rule.outcome}`", rule.rule_id
        assert row[3] == rule.evidence, rule.rule_id


#: our captures (tests/goldens: the lab, by `probe run`; the fake network): what 2026.11.1
#: said -> the outcome and rule now
CAPTURED = {
    # item 2: the ISP rewrites NXDOMAIN (the run's canary shows it); was dns/unexpected-address
    "lab/dns-nxdomain-rewritten": ("down/everywhere", "down.dns_nxdomain_rewritten"),
    # item 3: a 503 to everyone over validated TLS; was ok
    "lab/odd-503": ("down/server-error", "down.server_error_tls"),
    "lab/odd-503-http": ("down/server-error", "down.server_error"),
    # item 5: a 4 KiB page behind an SNI-triggered 8 kbit/s cap; was ok
    "lab/http-throttled-sni-small-page": ("http/throttled", "http.throttled_follow_up"),
    # the same cap on 320 KiB; was http/body-timeout
    "lab/http-throttled-sni-large-page": ("http/throttled", "http.throttled_follow_up"),
    # a 2 kB page behind a 16 kbit/s cap whose follow-up is too short for a goodput; was ok
    "targeted/throttled-tiny-page-stage-times": ("http/throttled", "http.throttled_stage_times"),
    # a large object over a link slow for every site; was http/throttled
    "lab/slow-link-large-object": ("http/slow-link", "http.slow_link"),
}


@pytest.mark.parametrize("case_id", list(CAPTURED))
def test_our_captures(case_id: str) -> None:
    tier, name = case_id.split("/")
    case = tiers.Case(tier, name, tiers.GOLDENS / tier / name / tiers.MEASUREMENT)
    v = analyze(corpus.strip_verdict(case.measurement()))
    assert (v["x_outcome"], v["x_rule_id"]) == CAPTURED[case_id]
