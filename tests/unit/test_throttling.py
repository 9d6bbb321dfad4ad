"""Throttling from every clue (issue 16, item 5): stage times against the run baseline and the
control, the follow-up transfer, and the slow link that slows every site.

The measurements are built in our probe's shape (tests/unit/test_analysis_rules.py) with the
timings a probe records: connect and handshake ``t0``/``t``, the request's ``t0``, progress
samples, the control's ``x_transfer`` and the run's ``x_run_baseline``. The anchor is Russia's
SNI-triggered throttling of Twitter (2021, ~130 kbit/s, first seen on small objects).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from probe.analysis import analyze
from probe.analysis.observations import observe
from probe.analysis.samples import StageSample, parse_baseline
from probe.analysis.throttling import latency_excess, suspect
from probe.analysis.timing import baseline_sample, summarise
from tests.unit.test_analysis_rules import IP, measurement

TID = 3
HEAD = 300  # bytes of a response head


def _progress(t0: float, *, ttfb: float, body: int, seconds: float, step: float = 0.1) -> list:
    """``bytes_received_cumulative`` samples: the head at ``t0 + ttfb``, then the body evenly
    over ``seconds``."""
    first = t0 + ttfb
    n = max(int(seconds / step), 1)
    out = [(first, HEAD)]
    out += [(first + k * seconds / n, HEAD + body * k // n) for k in range(1, n + 1)]
    return [
        {"operation": "bytes_received_cumulative", "t": round(t, 6), "num_bytes": b,
         "transaction_id": TID, "tags": ["depth=0", "classic"]}
        for t, b in out
    ]  # fmt: skip


def page(
    *,
    tcp: float = 0.01,
    tls: float | None = 0.02,
    ttfb: float = 0.03,
    body: int = 4000,
    body_seconds: float = 0.01,
    timeout: bool = False,
    control_ttfb: float = 0.02,
    control_body_seconds: float = 0.01,
    control_tls: float | None = 0.01,
    control_body: int | None = None,
) -> dict[str, Any]:
    """A fetch of https://blocked.example/ with the given stage times (``tls=None``: http)."""
    m = measurement(scheme="https" if tls is not None else "http")
    tk = m["test_keys"]
    t = 0.1
    tk["tcp_connect"][0].update(t0=t, t=t + tcp)
    t += tcp
    if tls is not None:
        tk["tls_handshakes"][0].update(t0=t, t=t + tls)
        t += tls
    req = tk["requests"][0]
    req.update(t0=t, t=t + ttfb + body_seconds)
    req["response"]["body"] = "x" * min(body, 2000)
    if timeout:
        req["failure"] = "generic_timeout_error"
    tk["network_events"] = _progress(t, ttfb=ttfb, body=body, seconds=body_seconds)
    length = body if control_body is None else control_body
    tk["control"]["http_request"]["x_transfer"] = {
        "body_length": length, "t_first_byte": control_ttfb,
        "t_done": control_ttfb + control_body_seconds, "t_connect": 0.005, "t_tls": control_tls,
    }  # fmt: skip
    return m


def baseline(n: int = 6, **stage: float) -> dict[str, Any]:
    """``x_run_baseline`` of ``n`` other targets with the given stage times."""
    sample = {"tcp_connect": 0.01, "tls_handshake": 0.02, "ttfb": 0.03,
              "body_bytes": 60000, "body_time": 0.05}  # fmt: skip
    sample.update(stage)
    return {"version": 1, "targets_seen": n, "samples": [dict(sample) for _ in range(n)]}


def verdict(m: dict[str, Any]) -> tuple[Any, Any, str, str]:
    v = analyze(m)
    return v["blocking"], v["accessible"], v["x_outcome"], v["x_rule_id"]


# --- a small page throttled to a few kbit/s: the stage times give it away --------------------

#: Twitter in 2021 from a small page's point of view: the server's handshake flight and a
#: 4 kB page through a ~16 kbit/s cap take seconds, the control took milliseconds
SMALL_THROTTLED = {"tls": 2.1, "ttfb": 0.6, "body": 4000, "body_seconds": 2.5}


def test_a_small_throttled_page_is_throttled_by_its_stage_times() -> None:
    """Before 2026.12.1: ok (the page completed before a goodput could be taken)."""
    m = page(**SMALL_THROTTLED)
    m["test_keys"]["x_run_baseline"] = baseline()
    b, a, outcome, rule = verdict(m)
    assert (b, a, outcome, rule) == (
        "http-failure", False, "http/throttled", "http.throttled_stage_times",
    )  # fmt: skip
    v = analyze(m)
    assert {"x_run_baseline", "control.http_request.x_transfer"} <= set(v["x_evidence"])
    assert "tls_handshakes[0]" in v["x_evidence"]


def test_without_a_baseline_the_stage_times_prove_nothing() -> None:
    assert verdict(page(**SMALL_THROTTLED))[2] == "ok"
    m = page(**SMALL_THROTTLED)
    m["test_keys"]["x_run_baseline"] = baseline(n=2)  # too few other targets
    assert verdict(m)[2] == "ok"


def test_a_slow_link_slows_every_site_and_is_not_throttling() -> None:
    m = page(**SMALL_THROTTLED)
    m["test_keys"]["x_run_baseline"] = baseline(tls_handshake=1.9, ttfb=0.5, body_time=20.0)
    assert verdict(m)[2] == "ok"


def test_a_slow_server_is_slow_for_the_control_too() -> None:
    m = page(**SMALL_THROTTLED, control_ttfb=2.5, control_tls=1.9)
    m["test_keys"]["x_run_baseline"] = baseline()
    assert verdict(m)[2] == "ok"


def test_a_far_server_has_a_long_round_trip_too() -> None:
    m = page(**{**SMALL_THROTTLED, "tcp": 0.35})
    m["test_keys"]["x_run_baseline"] = baseline()
    assert verdict(m)[2] == "ok"


def test_a_small_delay_is_noise() -> None:
    m = page(tls=0.3, ttfb=0.2, body=4000, body_seconds=0.2)  # 0.7 s where others take 0.05
    m["test_keys"]["x_run_baseline"] = baseline()
    assert verdict(m)[2] == "ok"


def test_the_cleartext_page_too() -> None:
    m = page(tls=None, ttfb=2.2, body=4000, body_seconds=2.0)
    m["test_keys"]["x_run_baseline"] = baseline()
    assert verdict(m)[2:] == ("http/throttled", "http.throttled_stage_times")


# --- a large page: goodput, and the baseline's veto ---------------------------------------------


def _large(rate: float, *, capacity_rate: float | None) -> dict[str, Any]:
    """A 320 kB page flowing at ``rate`` bytes/s until the 10 s timeout; the control fetched it
    in 0.2 s; the other targets of the run sustained ``capacity_rate``."""
    m = page(
        ttfb=0.05, body=int(rate * 9.5), body_seconds=9.5, timeout=True,
        control_ttfb=0.02, control_body_seconds=0.2, control_body=320 * 1024,
    )  # fmt: skip
    if capacity_rate is not None:
        m["test_keys"]["x_run_baseline"] = baseline(
            body_bytes=int(capacity_rate * 2), body_time=2.0
        )
    return m


def test_a_large_page_at_the_links_own_speed_is_a_slow_link() -> None:
    """Before: http/throttled (http.throttled): a 64 kbit/s link for every site."""
    b, a, outcome, rule = verdict(_large(8000, capacity_rate=9000))
    assert (b, a, outcome, rule) == (False, True, "http/slow-link", "http.slow_link")


def test_a_large_page_far_under_the_links_speed_is_throttled() -> None:
    assert verdict(_large(8000, capacity_rate=2_000_000))[2:] == (
        "http/throttled",
        "http.throttled_goodput",
    )


def test_a_large_page_without_baseline_keeps_the_goodput_rule() -> None:
    """OONI's data and our older measurements carry no baseline: the control alone decides."""
    assert verdict(_large(8000, capacity_rate=None))[2] == "http/throttled"


# --- the follow-up ------------------------------------------------------------------------------


def _with_follow_up(m: dict[str, Any], *, rate: float, sni_tls: float | None = 0.02) -> None:
    """Add the follow-up's events: a Range transfer at ``rate`` bytes/s for 10 s on a new
    connection (transaction 20) and an innocuous-SNI handshake (transaction 21)."""
    tk = m["test_keys"]
    t0 = 5.0
    tags = ["depth=0", "x_diag=throughput"]
    tk["tcp_connect"].append(
        {
            "ip": IP,
            "port": 443,
            "status": {"success": True, "failure": None},
            "t0": t0,
            "t": t0 + 0.01,
            "tags": tags,
            "transaction_id": 20,
        }
    )
    tk["tls_handshakes"].append({"address": f"{IP}:443", "server_name": "blocked.example",
                                 "failure": None, "no_tls_verify": False, "t0": t0 + 0.01,
                                 "t": t0 + 2.0, "tags": tags, "transaction_id": 20})  # fmt: skip
    follow = copy.deepcopy(tk["requests"][-1])
    follow.update(tags=tags, transaction_id=20, t0=t0 + 2.0, t=t0 + 12.0,
                  failure="generic_timeout_error")  # fmt: skip
    follow["response"]["code"] = 206
    tk["requests"].insert(0, follow)
    events = _progress(t0 + 2.0, ttfb=0.5, body=int(rate * 9.5), seconds=9.5)
    for e in events:
        e.update(transaction_id=20, tags=tags)
    tk["network_events"] += events
    if sni_tls is not None:
        sni_tags = ["depth=0", "x_diag=throughput_sni"]
        tk["tcp_connect"].append(
            {
                "ip": IP,
                "port": 443,
                "status": {"success": True, "failure": None},
                "t0": 17.0,
                "t": 17.01,
                "tags": sni_tags,
                "transaction_id": 21,
            }
        )
        tk["tls_handshakes"].append({"address": f"{IP}:443", "server_name": "example.org",
                                     "failure": None, "no_tls_verify": True, "t0": 17.01,
                                     "t": 17.01 + sni_tls, "tags": sni_tags,
                                     "transaction_id": 21})  # fmt: skip


def test_the_follow_up_measures_the_cap_the_small_page_could_not() -> None:
    # 0.8 s instead of 0.05: under the verdict's bar, over the probe's bar for a follow-up
    m = page(tls=0.4, ttfb=0.2, body=4000, body_seconds=0.2)
    m["test_keys"]["x_run_baseline"] = baseline()
    assert verdict(m)[2] == "ok" and suspect(observe(m)) == ["stage_times"]
    _with_follow_up(m, rate=2000)
    v = analyze(m)
    assert (v["x_outcome"], v["x_rule_id"]) == ("http/throttled", "http.throttled_follow_up")
    assert v["x_evidence"][:2] == ["requests[0]", "x_run_baseline"]
    assert "tls_handshakes[2]" in v["x_evidence"]  # the innocuous SNI, fast


def test_a_follow_up_at_full_speed_clears_the_target() -> None:
    m = page(**SMALL_THROTTLED)
    m["test_keys"]["x_run_baseline"] = baseline()
    _with_follow_up(m, rate=500_000)
    assert verdict(m)[2] == "ok"


def test_without_a_baseline_the_follow_up_needs_the_innocuous_sni_comparison() -> None:
    m = page(tls=0.4, ttfb=0.2, body=4000, body_seconds=0.2)
    _with_follow_up(m, rate=2000)
    assert verdict(m)[2] == "http/throttled"  # control goodput + innocuous SNI 100x faster
    m = page(tls=0.4, ttfb=0.2, body=4000, body_seconds=0.2)
    _with_follow_up(m, rate=2000, sni_tls=1.9)  # the innocuous SNI is slow too: the path
    assert verdict(m)[2] == "ok"


# --- the facts themselves ------------------------------------------------------------------------


def test_the_baseline_sample_is_read_from_the_events() -> None:
    m = page(tcp=0.01, tls=0.02, ttfb=0.03, body=60000, body_seconds=0.05)
    s = baseline_sample(observe(m))
    assert s is not None
    assert (round(s.tcp_connect or 0, 6), round(s.tls_handshake or 0, 6)) == (0.01, 0.02)
    assert round(s.ttfb or 0, 6) == 0.03 and s.body_bytes == 60000
    failed = page(timeout=True)
    assert baseline_sample(observe(failed)) is None  # a failed fetch says nothing of the link


def test_the_baseline_summary_is_robust_to_a_minority_of_slow_targets() -> None:
    fast = StageSample(0.01, 0.02, 0.03, 60000, 0.05)
    slow = StageSample(0.01, 3.0, 1.0, 4000, 3.0)
    b = summarise([fast, fast, fast, slow, slow])
    assert b is not None and b.tls_handshake == 0.02 and b.capacity == 60000 / 0.05
    assert summarise([fast, fast]) is None


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                         max_size=5),
                    max_leaves=20))  # fmt: skip
def test_parsing_a_baseline_never_raises(raw: Any) -> None:
    out = parse_baseline(raw)
    assert out is None or all(s.ttfb is not None for s in out)
    m = page(**SMALL_THROTTLED)
    m["test_keys"]["x_run_baseline"] = raw
    m["test_keys"]["x_nxdomain_canary"] = raw
    assert analyze(m)["x_rule_id"] != "internal.error"  # total: never raises
    latency_excess(observe(m))
