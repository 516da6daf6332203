"""The transition function alone: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.domain import (
    RANK,
    Authorized,
    Captured,
    CaptureRejected,
    Expired,
    Failed,
    Payment,
    RefundRejected,
    RefundSettled,
    Signal,
    Status,
    Voided,
    capture_amount,
    refund_amount,
    transition,
    voidable,
)

NOW = datetime(2026, 1, 3, tzinfo=UTC)


def payment(status: Status = Status.CREATED, **changes: object) -> Payment:
    values: dict[str, object] = {"status": status, "amount": 50_000, "currency": "INR"}
    if status in (Status.CAPTURED, Status.PARTIALLY_REFUNDED, Status.REFUNDED):
        values.update(gateway_payment_id="pay_1", captured_amount=50_000)
    values.update(changes)
    return Payment(**values)  # type: ignore[arg-type]


def test_capture_of_a_created_payment_emits_success() -> None:
    outcome = transition(payment(), Captured("pay_1", 50_000, "INR", NOW))

    assert (outcome.status, outcome.emit, outcome.captured_amount) == (
        Status.CAPTURED,
        "success",
        50_000,
    )
    assert outcome.gateway_payment_id == "pay_1"


def test_second_capture_changes_nothing() -> None:
    before = payment(Status.CAPTURED)

    outcome = transition(before, Captured("pay_1", 50_000, "INR", NOW))

    assert outcome.emit is None
    assert not outcome.changed(before)


def test_failure_after_capture_leaves_it_captured() -> None:
    outcome = transition(payment(Status.CAPTURED), Failed("pay_1", "BAD_REQUEST_ERROR"))

    assert (outcome.status, outcome.emit) == (Status.CAPTURED, None)


def test_failure_of_another_attempt_does_not_undo_an_authorisation() -> None:
    before = payment(Status.AUTHORIZED, gateway_payment_id="pay_2")

    assert transition(before, Failed("pay_1")).status is Status.AUTHORIZED
    assert transition(before, Failed("pay_2")).emit == "failed"


def test_a_later_attempt_may_still_capture_a_failed_payment() -> None:
    before = payment(Status.FAILED, gateway_payment_id="pay_1")

    outcome = transition(before, Captured("pay_2", 50_000, "INR", NOW))

    assert (outcome.status, outcome.emit, outcome.gateway_payment_id) == (
        Status.CAPTURED,
        "success",
        "pay_2",
    )


def test_authorisation_after_capture_is_ignored() -> None:
    assert transition(payment(Status.CAPTURED), Authorized("pay_1", 50_000, "INR")).emit is None


@pytest.mark.parametrize(
    "signal",
    [Captured("pay_1", 49_999, "INR", NOW), Authorized("pay_1", 50_000, "USD")],
)
def test_amount_or_currency_mismatch_conflicts_without_an_event(signal: Signal) -> None:
    outcome = transition(payment(), signal)

    assert (outcome.status, outcome.emit) == (Status.CONFLICTED, None)
    assert outcome.conflict is not None


def test_conflicted_is_final() -> None:
    before = payment(Status.CONFLICTED)

    assert transition(before, Captured("pay_1", 50_000, "INR", NOW)).status is Status.CONFLICTED


def test_refunds_move_to_partially_then_fully_refunded() -> None:
    first = transition(payment(Status.CAPTURED), RefundSettled(20_000, processed=True))
    assert (first.status, first.emit, first.refunded_total) == (
        Status.PARTIALLY_REFUNDED,
        "refunded",
        20_000,
    )

    after = payment(Status.PARTIALLY_REFUNDED, refunded_total=20_000)
    second = transition(after, RefundSettled(30_000, processed=True))

    assert (second.status, second.refunded_total) == (Status.REFUNDED, 50_000)


def test_failed_refund_changes_nothing() -> None:
    outcome = transition(payment(Status.CAPTURED), RefundSettled(20_000, processed=False))

    assert (outcome.status, outcome.emit) == (Status.CAPTURED, None)


def test_refund_amount_defaults_to_what_is_left_and_refuses_more() -> None:
    captured = payment(Status.CAPTURED)

    assert refund_amount(captured, 10_000, None) == 40_000
    assert refund_amount(captured, 10_000, 40_000) == 40_000
    with pytest.raises(RefundRejected, match="exceeds"):
        refund_amount(captured, 10_000, 40_001)
    with pytest.raises(RefundRejected, match="in full"):
        refund_amount(captured, 50_000, None)
    with pytest.raises(RefundRejected, match="created"):
        refund_amount(payment(), 0, None)


signals = st.one_of(
    st.builds(
        Captured,
        st.sampled_from(["pay_1", "pay_2"]),
        st.sampled_from([50_000, 1]),
        st.just("INR"),
        st.just(NOW),
    ),
    st.builds(Authorized, st.sampled_from(["pay_1", "pay_2"]), st.just(50_000), st.just("INR")),
    st.builds(Failed, st.sampled_from(["pay_1", "pay_2", None])),
    st.builds(RefundSettled, st.integers(1, 50_000), st.booleans()),
    st.builds(Expired),
    st.builds(Voided),
)


@given(st.lists(signals, max_size=12))
def test_any_sequence_only_ever_moves_forward_and_succeeds_at_most_once(
    sequence: list[Signal],
) -> None:
    current = payment()
    successes = 0
    for signal in sequence:
        if isinstance(signal, RefundSettled) and (
            current.refunded_total + signal.amount > current.captured_amount
        ):
            continue  # the store never lets refunds exceed the capture
        outcome = transition(current, signal)
        successes += outcome.emit == "success"
        if current.status is Status.CONFLICTED:
            assert outcome.status is Status.CONFLICTED
        elif outcome.status is not Status.CONFLICTED:
            assert RANK[outcome.status] >= RANK[current.status]
        current = Payment(
            outcome.status,
            current.amount,
            current.currency,
            outcome.gateway_payment_id,
            outcome.captured_amount,
            outcome.refunded_total,
        )
    assert successes <= 1


def test_only_a_created_payment_expires_and_only_an_authorized_one_is_voided() -> None:
    assert transition(payment(), Expired()).status is Status.EXPIRED
    assert transition(payment(Status.AUTHORIZED), Voided()).status is Status.VOIDED
    for status in Status:
        if status is not Status.CREATED:
            assert transition(payment(status), Expired()).status is status
        if status is not Status.AUTHORIZED:
            assert transition(payment(status), Voided()).status is status
    assert transition(payment(), Expired()).emit is None
    assert transition(payment(Status.AUTHORIZED), Voided()).emit is None


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.VOIDED])
def test_money_arriving_after_expiry_or_void_is_captured_and_failures_change_nothing(
    status: Status,
) -> None:
    late = transition(payment(status), Captured("pay_9", 50_000, "INR", NOW))
    failed = transition(payment(status), Failed("pay_9"))
    authorized = transition(payment(status), Authorized("pay_9", 50_000, "INR"))

    assert (late.status, late.emit, late.captured_amount) == (Status.CAPTURED, "success", 50_000)
    assert (failed.status, failed.emit) == (status, None)
    assert (authorized.status, authorized.emit) == (status, None)


def test_a_capture_of_the_part_an_operator_asked_for_is_no_conflict() -> None:
    asked = payment(Status.AUTHORIZED, gateway_payment_id="pi_1", capture_requested=30_000)

    part = transition(asked, Captured("pi_1", 30_000, "INR", NOW))
    whole = transition(asked, Captured("pi_1", 50_000, "INR", NOW))

    assert (part.status, part.emit, part.captured_amount) == (Status.CAPTURED, "success", 30_000)
    assert whole.status is Status.CONFLICTED


def test_capture_amount_is_all_by_default_and_refuses_what_the_gateway_would() -> None:
    held = payment(Status.AUTHORIZED)

    assert capture_amount(held, None, partial=False) == 50_000
    assert capture_amount(held, 20_000, partial=True) == 20_000
    assert capture_amount(payment(Status.CAPTURED), None, partial=False) is None
    with pytest.raises(CaptureRejected, match="exceeds"):
        capture_amount(held, 50_001, partial=True)
    with pytest.raises(CaptureRejected, match="whole authorization"):
        capture_amount(held, 20_000, partial=False)
    with pytest.raises(CaptureRejected, match="asked already"):
        capture_amount(payment(Status.AUTHORIZED, capture_requested=10_000), 20_000, partial=True)
    for status in (Status.CREATED, Status.FAILED, Status.EXPIRED, Status.VOIDED):
        with pytest.raises(CaptureRejected, match=status.value):
            capture_amount(payment(status), None, partial=True)


def test_voidable_only_when_authorized_and_a_repeat_is_no_second_void() -> None:
    assert voidable(payment(Status.AUTHORIZED)) is True
    assert voidable(payment(Status.VOIDED)) is False
    with pytest.raises(CaptureRejected, match="captured"):
        voidable(payment(Status.CAPTURED))
