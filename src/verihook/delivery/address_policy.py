"""Which URLs and addresses the sender may reach (the SSRF guard). Pure: no DNS, no sockets.

A URL is checked when an endpoint is added (scheme, credentials, literal addresses), and every
address is checked again at connect time, after DNS, on the address actually connected to:
a hostname that resolves to 127.0.0.1 today is refused as surely as the literal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from verihook.exceptions import InvalidInput

__all__ = ["AddressPolicy", "BlockedAddress", "EndpointUrl"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Beyond the ranges Python's ipaddress already calls private/loopback/link-local/...
_EXTRA_BLOCKED = [
    ipaddress.ip_network("100.64.0.0/10"),  # CGNAT (carrier-grade NAT), not "private" to Python
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
]
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class BlockedAddress(InvalidInput):
    """The URL or address is one the sender must not reach."""


@dataclass(frozen=True, slots=True)
class EndpointUrl:
    url: str
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """``allow_private`` lets tests and development reach loopback and private networks,
    and plain http. Off by default."""

    allow_private: bool = False

    def check_url(self, url: str) -> EndpointUrl:
        if not isinstance(url, str) or len(url) > 2048 or any(c.isspace() for c in url):
            raise InvalidInput("endpoint URL must be a single URL of at most 2048 characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidInput("endpoint URL is malformed") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise InvalidInput("endpoint URL must use https")
        if scheme == "http" and not self.allow_private:
            raise BlockedAddress("endpoint URL must use https (plain http is for development)")
        if parts.username is not None or parts.password is not None:
            raise InvalidInput("endpoint URL must not carry credentials")
        host = (parts.hostname or "").lower()
        if not host:
            raise InvalidInput("endpoint URL has no host")
        if parts.fragment:
            raise InvalidInput("endpoint URL must not have a fragment")
        if not self.allow_private:
            if host == "localhost" or host.endswith(".localhost") or host in _METADATA_HOSTS:
                raise BlockedAddress(f"endpoint host {host} is not a public address")
            try:
                literal = ipaddress.ip_address(host)
            except ValueError:
                literal = None
            if literal is not None:
                self.check_address(literal)
        return EndpointUrl(url=url, scheme=scheme, host=host, port=port or _default_port(scheme))

    def check_address(self, address: str | IPAddress) -> None:
        """Raise BlockedAddress unless the sender may connect to this IP."""
        if self.allow_private:
            return
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if (
            not ip.is_global
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            or any(ip in net for net in _EXTRA_BLOCKED)
        ):
            raise BlockedAddress(f"address {ip} is not a public address")

    def is_allowed(self, address: str | IPAddress) -> bool:
        try:
            self.check_address(address)
        except BlockedAddress:
            return False
        return True


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
