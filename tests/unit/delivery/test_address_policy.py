from __future__ import annotations

import pytest

from verihook.delivery.address_policy import AddressPolicy, BlockedAddress
from verihook.exceptions import InvalidInput

STRICT = AddressPolicy()
DEV = AddressPolicy(allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "fd00:ec2::254",
    ],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    with pytest.raises(BlockedAddress):
        STRICT.check_address(address)
    DEV.check_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    STRICT.check_address(address)
    assert STRICT.is_allowed(address)


def test_https_url_is_parsed() -> None:
    url = STRICT.check_url("https://hooks.example.com/passbase?x=1")
    assert (url.scheme, url.host, url.port) == ("https", "hooks.example.com", 443)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "https"),
        ("ftp://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://localhost/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://hooks.example.com:99999/", "malformed"),
        ("https://hooks.example.com/a b", "single URL"),
        ("https://hooks.example.com/#frag", "fragment"),
    ],
)
def test_bad_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        STRICT.check_url(url)


def test_development_allows_loopback_http() -> None:
    url = DEV.check_url("http://127.0.0.1:8080/webhooks")
    assert (url.scheme, url.host, url.port) == ("http", "127.0.0.1", 8080)
