"""The shared payment record: what the payment service writes is byte for byte what it always
wrote, and what parse_payment (analytics) accepts and rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from orderpipeline.core.order import InvalidMessage, Order
from orderpipeline.core.payment import Payment, parse_payment

PAID_AT = "2026-11-27T03:40:01.000Z"


def an_order(order_id: str = "ord_1", amount: float = 11.0) -> Order:
    return Order(
        order_id=order_id,
        customer_id=1,
        amount=amount,
        currency="USD",
        country="DE",
        status="CREATED",
        created_at=datetime(2026, 11, 27, 3, 40, tzinfo=UTC),
    )


def written_before(order: Order, paid_at: str) -> bytes:
    """payment_json as it was before the model: the wire form the readers know."""
    return json.dumps(
        {
            "order_id": order.order_id,
            "status": "PAID",
            "amount": order.amount,
            "country": order.country,
            "currency": order.currency,
            "paid_at": paid_at,
        },
        separators=(",", ":"),
    ).encode()


@given(
    order_id=st.text(min_size=1, max_size=128),
    amount=st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False),
)
def test_the_wire_form_is_byte_for_byte_what_the_payment_service_always_wrote(
    order_id: str, amount: float
) -> None:
    order = an_order(order_id, amount)
    assert Payment.of(order, PAID_AT).to_json() == written_before(order, PAID_AT)


def test_what_the_payment_service_writes_parses_back_to_the_same_payment() -> None:
    payment = Payment.of(an_order(), PAID_AT)
    assert parse_payment(payment.to_json(), 65536) == payment


def test_a_record_with_only_order_id_status_and_amount_is_a_payment_stored_as_sent() -> None:
    raw = b'{"order_id": "ord_1", "status": "PAID", "amount": 12}'
    payment = parse_payment(raw, 65536)
    assert payment.amount == 12.0
    assert payment.document() == {"order_id": "ord_1", "status": "PAID", "amount": 12}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message"),
        (b"x" * 300, "oversized: 300 bytes > 256"),
        (b"{not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"status": "PAID", "amount": 1}', "order_id: missing"),
        (b'{"order_id": "", "status": "PAID", "amount": 1}', "order_id: string_too_short"),
        (b'{"order_id": 7, "status": "PAID", "amount": 1}', "order_id: string_type"),
        (b'{"order_id": "o", "status": "PAID", "amount": "1"}', "amount: float_type"),
        (b'{"order_id": "o", "status": "PAID", "amount": -1}', "amount: greater_than_equal"),
        (b'{"order_id": "o", "amount": 1}', "status: missing"),
        (
            b'{"order_id": "o", "status": "PAID", "amount": 1, "currency": "usd"}',
            "currency: string_pattern_mismatch",
        ),
        (
            b'{"order_id": "o", "status": "PAID", "amount": 1, "paid_at": 1700000000}',
            "paid_at: string_type",
        ),
    ],
)
def test_an_invalid_payment_is_rejected_with_a_reason_naming_the_field(
    raw: bytes | None, reason: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_payment(raw, 256)
    assert caught.value.reason == reason
