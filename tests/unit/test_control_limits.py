"""Token bucket, in-flight gate and the address policy of the control server."""

from __future__ import annotations

import pytest

from probe.config import parse_ranges
from probe.control.limits import ConcurrencyGate, Overloaded, RateLimiter, client_key
from probe.control.safety import AddressPolicy
from probe.control.server import anonymize_client


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_the_configured_rate() -> None:
    clock = Clock()
    rl = RateLimiter(rate_per_minute=3, clock=clock)
    assert [rl.allow("203.0.113.9") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("198.51.100.1")  # another client has its own bucket
    clock.now += 20.0  # one token back
    assert rl.allow("203.0.113.9") and not rl.allow("203.0.113.9")
    clock.now += 3600.0
    rl.allow("192.0.2.1")
    assert len(rl) == 1  # refilled buckets are forgotten


def test_rate_limiter_memory_is_bounded() -> None:
    rl = RateLimiter(rate_per_minute=1, max_clients=100, clock=Clock())
    for i in range(5000):
        rl.allow(f"10.{i // 256 % 256}.{i % 256}.1")
    assert len(rl) == 100


def test_ipv6_clients_share_their_slash_64() -> None:
    rl = RateLimiter(rate_per_minute=1, clock=Clock())
    assert rl.allow("2001:db8:1:2::1")
    assert not rl.allow("2001:db8:1:2:ffff::7")
    assert rl.allow("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_disabled_rate_limit_allows_everything() -> None:
    rl = RateLimiter(rate_per_minute=0, clock=Clock())
    assert all(rl.allow("192.0.2.1") for _ in range(1000)) and len(rl) == 0


def test_gate_refuses_past_its_limit_and_releases() -> None:
    gate = ConcurrencyGate(2)
    with gate.slot(), gate.slot():
        with pytest.raises(Overloaded):
            with gate.slot():
                pass
        assert gate.in_flight == 2
    assert gate.in_flight == 0


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "255.255.255.255", "224.0.0.1", "240.0.0.1", "198.18.0.1", "192.0.2.1",
     "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "2002:7f00:1::1",
     "2001:db8::1", "2001::1", "fe80::1%eth0", "not-an-ip", "64:ff9b::a00:1"],
)  # fmt: skip
def test_special_purpose_addresses_are_refused(ip: str) -> None:
    assert not AddressPolicy().allowed(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "1.1.1.1"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert AddressPolicy().allowed(ip)


def test_lab_ranges_are_the_only_exception() -> None:
    lab = AddressPolicy.of(parse_ranges("198.18.0.0/15"))
    assert lab.allowed("198.18.0.5") and lab.allowed("198.19.255.1")
    assert not lab.allowed("127.0.0.1") and not lab.allowed("10.0.0.1")


def test_logged_client_is_a_prefix() -> None:
    assert anonymize_client("203.0.113.77") == "203.0.113.0/24"
    assert anonymize_client("2001:db8:1:2::1") == "2001:db8:1::/48"
    assert anonymize_client("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert anonymize_client("garbage") == ""


def test_burst_is_the_bucket_size_and_never_more_than_a_minute() -> None:
    clock = Clock()
    rl = RateLimiter(rate_per_minute=600, burst=5, clock=clock)
    assert [rl.allow("203.0.113.9") for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 0.1  # 600/min is one token per 0.1 s
    assert rl.allow("203.0.113.9") and not rl.allow("203.0.113.9")
    slow = RateLimiter(rate_per_minute=2, burst=60, clock=clock)
    assert [slow.allow("198.51.100.1") for _ in range(3)] == [True, True, False]
