"""REZ-coin arithmetic: what a payment earns and what a refund takes back. Pure, no I/O.

Earning rule (configured in `wallet.settings.WalletSettings`, documented in the README):

    coins = floor(amount in major units × CASHBACK_PERCENT / 100 × tier multiplier),
            then at most CASHBACK_CAP_COINS per payment.

Defaults: CASHBACK_PERCENT=5, WALLET_TIER_MULTIPLIERS="bronze=1,silver=1.25,gold=1.5,platinum=2",
WALLET_DEFAULT_TIER=bronze (users the wallet has not heard of, and unknown tiers),
CASHBACK_CAP_COINS=500, CASHBACK_CURRENCIES=INR (other currencies earn nothing). So ₹499.00
earns 24 coins (24.95), 37 for a gold user. Coins are whole units and the one rounding is a
floor at the end, so a user is never given a fraction of a coin. Everything is computed with
integers and `Decimal`, never floats.

Reversal rule: after refunds totalling T of a payment of amount A that earned C coins, the
payment's reversals add up to floor(C × T / A); a full refund (or T ≥ A) takes back exactly
what is left. Working from the running total rather than each refund's own amount means the
result does not depend on the order refunds arrive in, rounding losses do not pile up, and the
total reversed can never exceed C.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext

from rtmn_shared.money import exponent

CASHBACK = "cashback"
CASHBACK_REVERSAL = "cashback_reversal"


class RuleError(ValueError):
    """A configured earning rule that cannot be used (bad multiplier list, unknown tier...)."""


@dataclass(frozen=True)
class EarningRule:
    percent: Decimal
    multipliers: Mapping[str, Decimal]
    default_tier: str
    cap_coins: int
    currencies: frozenset[str] = field(default=frozenset({"INR"}))

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.percent <= Decimal(100):
            raise RuleError(f"cashback percent must be within 0..100, not {self.percent}")
        if self.cap_coins < 0:
            raise RuleError("the cashback cap cannot be negative")
        if self.default_tier not in self.multipliers:
            raise RuleError(f"the default tier {self.default_tier!r} has no multiplier")
        if any(m < 0 for m in self.multipliers.values()):
            raise RuleError("tier multipliers cannot be negative")

    def tier_of(self, tier: str | None) -> str:
        """The tier the rule applies: a tier it does not know earns like the default one."""
        name = (tier or "").strip().lower()
        return name if name in self.multipliers else self.default_tier

    def coins_for(self, amount_minor: int, currency: str, tier: str | None) -> int:
        if amount_minor <= 0 or currency not in self.currencies:
            return 0
        # Ample precision so the product is exact before the single floor at the end.
        with localcontext() as ctx:
            ctx.prec = 60
            major = Decimal(amount_minor).scaleb(-exponent(currency))
            raw = major * self.percent / 100 * self.multipliers[self.tier_of(tier)]
            coins = int(raw.to_integral_value(rounding=ROUND_FLOOR))
        return min(coins, self.cap_coins)


def parse_multipliers(text: str) -> dict[str, Decimal]:
    """`bronze=1,silver=1.25` → {"bronze": Decimal("1"), "silver": Decimal("1.25")}."""
    result: dict[str, Decimal] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise RuleError(f"expected tier=multiplier, got {part.strip()!r}")
        try:
            multiplier = Decimal(value.strip())
        except InvalidOperation:
            raise RuleError(f"multiplier of {name!r} is not a number: {value.strip()!r}") from None
        if not multiplier.is_finite():
            raise RuleError(f"multiplier of {name!r} must be finite")
        result[name] = multiplier
    if not result:
        raise RuleError("no tier multipliers configured")
    return result


def reversal_coins(
    *, credited: int, reversed_so_far: int, payment_amount: int, refunded_total: int, full: bool
) -> int:
    """Coins one refund takes back (≥ 0), given what the payment earned and lost so far."""
    left = credited - reversed_so_far
    if left <= 0:
        return 0
    if full or refunded_total >= payment_amount:
        return left
    target = credited * max(refunded_total, 0) // payment_amount
    return min(left, max(0, target - reversed_so_far))
