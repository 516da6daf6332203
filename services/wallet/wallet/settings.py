"""The wallet's configuration: the common settings plus the earning rule (see domain.py)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator

from rtmn_shared.settings import CommonSettings
from wallet.domain import EarningRule, RuleError, parse_multipliers


class WalletSettings(CommonSettings):
    cashback_percent: Decimal = Field(
        default=Decimal(5), ge=0, le=100, description="% of the amount, in major units, as coins"
    )
    wallet_tier_multipliers: str = Field(
        default="bronze=1,silver=1.25,gold=1.5,platinum=2",
        description="tier=multiplier pairs, comma-separated",
    )
    wallet_default_tier: str = Field(
        default="bronze", description="the tier of users the wallet has not heard of"
    )
    cashback_cap_coins: int = Field(default=500, ge=0, description="most coins one payment earns")
    cashback_currencies: str = Field(
        default="INR", description="comma-separated ISO codes whose payments earn coins"
    )

    @model_validator(mode="after")
    def _rule_is_usable(self) -> WalletSettings:
        # A bad rule stops start-up with its reason, not the first payment.
        try:
            self.earning_rule()
        except RuleError as error:
            raise ValueError(str(error)) from None
        return self

    def earning_rule(self) -> EarningRule:
        return EarningRule(
            percent=self.cashback_percent,
            multipliers=parse_multipliers(self.wallet_tier_multipliers),
            default_tier=self.wallet_default_tier.strip().lower(),
            cap_coins=self.cashback_cap_coins,
            currencies=frozenset(
                code.strip().upper() for code in self.cashback_currencies.split(",") if code.strip()
            ),
        )
