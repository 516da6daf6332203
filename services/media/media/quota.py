"""Each owner's storage quota: bytes reserved before an image is processed, then settled to
what its objects really take, and given back if the upload does not finish."""

from __future__ import annotations

from dataclasses import dataclass

from media import store
from rtmn_shared.db import Pool


class OverQuota(Exception):
    """Storing this upload would take the owner's media past their quota."""

    def __init__(self, quota_bytes: int, used_bytes: int) -> None:
        super().__init__(f"over the quota of {quota_bytes} bytes")
        self.quota_bytes = quota_bytes
        self.used_bytes = used_bytes


@dataclass
class Reservation:
    owner_id: str
    bytes: int


class Quota:
    def __init__(self, pool: Pool, quota_bytes: int) -> None:
        self.pool = pool
        self.quota_bytes = quota_bytes

    async def reserve(self, owner_id: str, size: int) -> Reservation:
        """Raises OverQuota, having counted nothing."""
        if not await store.reserve_bytes(self.pool, owner_id, size, self.quota_bytes):
            raise await self._over(owner_id)
        return Reservation(owner_id, size)

    async def settle(self, reservation: Reservation, size: int) -> None:
        """The reservation becomes `size`; raises OverQuota (the reservation unchanged) when
        the extra bytes do not fit."""
        delta = size - reservation.bytes
        if not await store.adjust_bytes(self.pool, reservation.owner_id, delta, self.quota_bytes):
            raise await self._over(reservation.owner_id, holding=reservation.bytes)
        reservation.bytes = size

    async def release(self, reservation: Reservation) -> None:
        await store.adjust_bytes(
            self.pool, reservation.owner_id, -reservation.bytes, self.quota_bytes
        )
        reservation.bytes = 0

    async def _over(self, owner_id: str, holding: int = 0) -> OverQuota:
        # The usage the owner sees leaves out what this very upload still holds.
        used = await store.used_bytes(self.pool, owner_id)
        return OverQuota(self.quota_bytes, max(used - holding, 0))
