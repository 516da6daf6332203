"""The earning and reversal rules, pure: no database, no broker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.domain import EarningRule, RuleError, parse_multipliers, reversal_coins

RULE = EarningRule(
    percent=Decimal(5),
    multipliers=parse_multipliers("bronze=1,silver=1.25,gold=1.5,platinum=2"),
    default_tier="bronze",
    cap_coins=500,
)


@pytest.mark.parametrize(
    ("amount", "tier", "coins"),
    [
        (49_900, None, 24),  # ₹499.00 × 5 % = 24.95 → floor 24
        (49_900, "silver", 31),  # 24.95 × 1.25 = 31.1875
        (49_900, "GOLD", 37),  # tiers are case-insensitive; 37.425
        (49_900, "platinum", 49),  # 49.9
        (49_900, "diamond", 24),  # an unknown tier earns like the default one
        (1_999, None, 0),  # ₹19.99 → 0.9995: a fraction of a coin is never given
        (2_000, None, 1),  # exactly ₹20.00 → 1 coin
        (0, "platinum", 0),
        (10_000_000, None, 500),  # ₹1,00,000 would be 5000: capped per payment
        (10_000_000, "platinum", 500),
    ],
)
def test_coins_for_inr(amount: int, tier: str | None, coins: int) -> None:
    assert RULE.coins_for(amount, "INR", tier) == coins


def test_only_configured_currencies_earn() -> None:
    assert RULE.coins_for(49_900, "USD", None) == 0
    both = EarningRule(
        percent=Decimal(5),
        multipliers={"bronze": Decimal(1)},
        default_tier="bronze",
        cap_coins=500,
        currencies=frozenset({"INR", "JPY"}),
    )
    # JPY has no minor unit: ¥1000 × 5 % = 50 coins.
    assert both.coins_for(1_000, "JPY", None) == 50


def test_fractional_percent_is_exact() -> None:
    rule = EarningRule(
        percent=Decimal("0.1"), multipliers={"b": Decimal(3)}, default_tier="b", cap_coins=10**9
    )
    # ₹1000.00 × 0.1 % × 3 = exactly 3 (binary floats would give 2.9999...).
    assert rule.coins_for(100_000, "INR", None) == 3


@given(amount=st.integers(0, 10**15), tier=st.sampled_from([None, "bronze", "gold", "x"]))
def test_coins_are_whole_bounded_and_monotonic(amount: int, tier: str | None) -> None:
    coins = RULE.coins_for(amount, "INR", tier)
    assert 0 <= coins <= 500
    assert coins <= RULE.coins_for(amount + 100, "INR", tier)


def test_parse_multipliers() -> None:
    assert parse_multipliers(" Bronze=1, silver = 1.25 ,") == {
        "bronze": Decimal(1),
        "silver": Decimal("1.25"),
    }
    for bad in ("", "gold", "gold=x", "=2", "gold=Infinity"):
        with pytest.raises(RuleError):
            parse_multipliers(bad)


def test_a_rule_needs_its_default_tier_and_sane_numbers() -> None:
    with pytest.raises(RuleError, match="default tier"):
        EarningRule(Decimal(5), {"gold": Decimal(2)}, "bronze", 500)
    with pytest.raises(RuleError, match="percent"):
        EarningRule(Decimal(101), {"bronze": Decimal(1)}, "bronze", 500)
    with pytest.raises(RuleError, match="negative"):
        EarningRule(Decimal(5), {"bronze": Decimal(-1)}, "bronze", 500)


def test_partial_reversals_follow_the_running_total() -> None:
    # 100 coins on ₹1000: refunds of ₹333, ₹333, then the rest.
    first = reversal_coins(
        credited=100, reversed_so_far=0, payment_amount=1000, refunded_total=333, full=False
    )
    second = reversal_coins(
        credited=100, reversed_so_far=first, payment_amount=1000, refunded_total=666, full=False
    )
    last = reversal_coins(
        credited=100,
        reversed_so_far=first + second,
        payment_amount=1000,
        refunded_total=1000,
        full=True,
    )
    assert (first, second, last) == (33, 33, 34)


def test_a_full_refund_takes_exactly_what_is_left_and_never_more() -> None:
    assert (
        reversal_coins(
            credited=10, reversed_so_far=4, payment_amount=100, refunded_total=50, full=True
        )
        == 6
    )
    assert (
        reversal_coins(
            credited=10, reversed_so_far=10, payment_amount=100, refunded_total=100, full=True
        )
        == 0
    )
    # A late, smaller running total (a reordered refund) takes nothing more.
    assert (
        reversal_coins(
            credited=10, reversed_so_far=7, payment_amount=100, refunded_total=30, full=False
        )
        == 0
    )
    # refunded_total reaching the amount counts as full even without the flag.
    assert (
        reversal_coins(
            credited=10, reversed_so_far=3, payment_amount=100, refunded_total=100, full=False
        )
        == 7
    )


@given(
    credited=st.integers(0, 500),
    amount=st.integers(1, 10**9),
    cuts=st.lists(st.integers(1, 10**9), max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_reversals_never_exceed_the_credit_in_any_order(
    credited: int, amount: int, cuts: list[int], order: object
) -> None:
    totals = sorted({min(c, amount) for c in cuts})
    shuffled = list(totals)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    reversed_so_far = 0
    for total in shuffled:
        reversed_so_far += reversal_coins(
            credited=credited,
            reversed_so_far=reversed_so_far,
            payment_amount=amount,
            refunded_total=total,
            full=total >= amount,
        )
        assert 0 <= reversed_so_far <= credited
    # Whatever the order, the outcome is the share of the largest running total.
    expected = (
        credited
        if totals and totals[-1] >= amount
        else (credited * totals[-1] // amount if totals else 0)
    )
    assert reversed_so_far == expected
