"""The per-client cap counts the peer unless the peer is a trusted proxy (TRUSTED_PROXIES)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Starter


async def test_x_forwarded_for_from_an_untrusted_peer_does_not_mint_clients(
    start_otp: Starter,
) -> None:
    # The test client (127.0.0.1) is not among the proxies, so each forged address is ignored
    # and every send counts against the peer: the sixth passes OTP_IP_HOURLY_CAP (5).
    fresh = {"otp_hash_key": secrets.token_hex(32)}  # this run's own Redis keys
    async with start_otp(live=False, trusted_proxies="10.255.0.0/16", **fresh) as h:
        statuses = [(await h.send(h.new_phone(), ip=h.new_ip())).status for _ in range(6)]
    assert statuses == [202] * 5 + [429]


async def test_a_trusted_proxy_chain_names_each_client(start_otp: Starter) -> None:
    fresh = {"otp_hash_key": secrets.token_hex(32)}
    async with start_otp(live=False, **fresh) as h:
        statuses = [(await h.send(h.new_phone(), ip=h.new_ip())).status for _ in range(6)]
    assert statuses == [202] * 6
