"""Money is an integer count of minor units plus an ISO 4217 currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import StringConstraints

# Minor-unit exponents that are not 2 (ISO 4217); every other currency has two decimals.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}
_SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£"}

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


@dataclass(frozen=True, order=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError("Money.minor must be an int count of minor units")
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def amount_string(self) -> str:
        """The plain decimal string providers want, e.g. 49900 INR -> '499.00'."""
        places = exponent(self.currency)
        return f"{self.to_decimal():.{places}f}"

    def format(self) -> str:
        """For people: '₹1,234.50'; currencies without a symbol get their code."""
        places = exponent(self.currency)
        number = f"{self.to_decimal():,.{places}f}"
        symbol = _SYMBOLS.get(self.currency)
        return f"{symbol}{number}" if symbol else f"{self.currency} {number}"

    @classmethod
    def from_decimal(cls, amount: Decimal | str, currency: str) -> Money:
        value = Decimal(amount).scaleb(exponent(currency))
        if value != value.to_integral_value():
            raise ValueError(f"{amount} has more decimals than {currency} allows")
        return cls(int(value), currency)
