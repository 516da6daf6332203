"""Who a request comes from: the peer, or what trusted proxies say in X-Forwarded-For.

A proxy appends the address it received a request from, so X-Forwarded-For is read from the
right: each hop a trusted proxy wrote is passed over, and the first one no trusted proxy can
vouch for is the client. Anything to its left was written by the client and proves nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = "127.0.0.0/8,::1/128"


def parse_networks(value: str) -> tuple[Network, ...]:
    """A comma-separated CIDR list ("10.0.0.0/8, ::1"); a bare address is its own /32 or /128."""
    parts = (part.strip() for part in value.split(","))
    return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]
) -> str:
    """The rightmost address no trusted proxy accounts for; "unknown" without a peer."""
    nearest = _address(peer)
    if nearest is None:
        return peer or "unknown"
    hops = [hop for hop in (forwarded_for or "").split(",") if hop.strip()]
    while _trusted(nearest, proxies) and hops:
        hop = _address(hops.pop())
        if hop is None:
            break  # a trusted proxy passed on garbage: count it against that proxy's hop
        nearest = hop
    return str(nearest)


def client_key(address: str) -> str:
    """What per-client limits count: an IPv4 address, or an IPv6 /64 (one subscriber's prefix).

    Grouping IPv6 by /64 stops one host from minting a fresh client per address of its prefix.
    """
    ip = _address(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
