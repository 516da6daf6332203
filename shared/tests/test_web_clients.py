"""Who a request comes from: X-Forwarded-For is believed only as far as trusted proxies wrote it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rtmn_shared.settings import CommonSettings
from rtmn_shared.web.clients import LOOPBACK, client_address, client_key, parse_networks

GATEWAY = parse_networks("10.1.0.0/16, ::1")


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address("198.51.100.7", "203.0.113.9", GATEWAY) == "198.51.100.7"
    assert client_address("198.51.100.7", "10.1.0.5", GATEWAY) == "198.51.100.7"


def test_the_rightmost_hop_no_trusted_proxy_accounts_for_is_the_client() -> None:
    # The client wrote "1.2.3.4" itself; the gateway (10.1.0.5) appended the address it saw.
    forwarded = "1.2.3.4, 203.0.113.9, 10.1.0.7"
    assert client_address("10.1.0.5", forwarded, GATEWAY) == "203.0.113.9"
    assert client_address("10.1.0.5", "203.0.113.9", GATEWAY) == "203.0.113.9"


def test_a_trusted_peer_without_a_header_or_with_garbage_is_itself() -> None:
    assert client_address("10.1.0.5", None, GATEWAY) == "10.1.0.5"
    assert client_address("10.1.0.5", "not-an-ip", GATEWAY) == "10.1.0.5"
    assert client_address("10.1.0.5", "203.0.113.9, junk", GATEWAY) == "10.1.0.5"
    assert client_address(None, "203.0.113.9", GATEWAY) == "unknown"


def test_ipv6_peers_and_ipv4_mapped_addresses() -> None:
    assert client_address("::1", "2001:db8::1", GATEWAY) == "2001:db8::1"
    assert client_address("::ffff:10.1.0.5", "203.0.113.9", GATEWAY) == "203.0.113.9"


def test_the_default_trusts_only_loopback() -> None:
    loopback = parse_networks(LOOPBACK)
    assert client_address("127.0.0.1", "203.0.113.9", loopback) == "203.0.113.9"
    assert client_address("10.0.0.1", "203.0.113.9", loopback) == "10.0.0.1"


def test_a_client_is_an_ipv4_address_or_an_ipv6_slash_64() -> None:
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_key("unknown") == "unknown"


def test_a_bad_trusted_proxies_setting_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_PUBLIC_KEY", "k" * 40)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, everyone")
    with pytest.raises(ValidationError, match="everyone"):
        CommonSettings()
