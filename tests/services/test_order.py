"""The shared order schema: what parse_order accepts and rejects, and order id uniqueness."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from orderpipeline.core.order import (
    InvalidMessage,
    Order,
    OrderIdGenerator,
    format_timestamp,
    parse_order,
)

VALID = {
    "order_id": "ord_01JD3ABCDEF",
    "customer_id": 4821,
    "amount": 312.5,
    "currency": "USD",
    "country": "DE",
    "status": "CREATED",
    "created_at": "2026-11-27T03:40:00.123Z",
    "source": "order-service",
}

orders = st.builds(
    Order,
    order_id=st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ_ord", min_size=1, max_size=40),
    customer_id=st.integers(min_value=0, max_value=2**53),
    amount=st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    currency=st.from_regex(r"\A[A-Z]{3}\Z"),
    country=st.from_regex(r"\A[A-Z]{2}\Z"),
    status=st.text(min_size=1, max_size=32),
    created_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    source=st.text(min_size=1, max_size=64),
)


def raw(**changes: object) -> bytes:
    body = {**VALID, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_a_valid_order_parses_with_every_field() -> None:
    order = parse_order(raw())
    assert order.order_id == "ord_01JD3ABCDEF"
    assert order.amount == 312.5
    assert order.created_at == datetime(2026, 11, 27, 3, 40, 0, 123000, tzinfo=UTC)


def test_the_original_producers_timestamp_form_is_accepted() -> None:
    assert parse_order(raw(created_at="2024-01-15T10:30:00.123456Z")).created_at.year == 2024


def test_an_integer_amount_is_a_valid_number() -> None:
    assert parse_order(raw(amount=300)).amount == 300.0


@given(orders)
def test_serialising_then_parsing_gives_the_same_order_at_millisecond_precision(
    order: Order,
) -> None:
    parsed = parse_order(order.to_json())
    assert parsed.model_dump(exclude={"created_at"}) == order.model_dump(exclude={"created_at"})
    assert format_timestamp(parsed.created_at) == format_timestamp(order.created_at)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (raw(amount=-0.01), "amount"),
        (raw(amount="312.50"), "amount"),
        (raw(customer_id="4821"), "customer_id"),
        (raw(customer_id=True), "customer_id"),
        (raw(order_id=17), "order_id"),
        (raw(order_id=""), "order_id"),
        (raw(country="Germany"), "country"),
        (raw(currency="usd"), "currency"),
        (raw(created_at="yesterday"), "created_at"),
        (raw(created_at="2026-11-27T03:40:00"), "created_at"),
        (raw(country=...), "country"),
    ],
)
def test_an_invalid_message_is_rejected_with_a_reason_naming_the_problem(
    payload: bytes, reason: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_order(payload)
    assert reason in caught.value.reason


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_a_non_finite_amount_is_rejected(literal: bytes) -> None:
    payload = raw(amount=1.5).replace(b"1.5", literal)
    with pytest.raises(InvalidMessage, match="amount"):
        parse_order(payload)


def test_an_oversized_payload_is_rejected_before_parsing() -> None:
    payload = raw(source="x" * 2000)
    with pytest.raises(InvalidMessage, match="oversized"):
        parse_order(payload, max_bytes=1024)


def test_an_empty_message_is_rejected() -> None:
    with pytest.raises(InvalidMessage, match="empty"):
        parse_order(None)


@given(st.sampled_from(sorted(VALID)))
def test_any_missing_required_field_is_rejected(field: str) -> None:
    if field == "source":  # the one field with a default (the original always sets it)
        assert parse_order(raw(source=...)).source == "order-service"
        return
    with pytest.raises(InvalidMessage, match=field):
        parse_order(raw(**{field: ...}))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_either_parse_or_raise_invalid_message(payload: bytes) -> None:
    try:
        order = parse_order(payload)
    except InvalidMessage as exc:
        assert exc.reason
    else:
        assert order.amount >= 0 and math.isfinite(order.amount)


@given(st.floats(max_value=-1e-9) | st.sampled_from([math.nan, math.inf, -math.inf]))
def test_no_negative_or_non_finite_amount_is_ever_accepted(amount: float) -> None:
    with pytest.raises(InvalidMessage):
        parse_order(json.dumps({**VALID, "amount": amount}).encode())


def test_order_ids_are_unique_and_time_ordered_within_a_generator() -> None:
    ids = OrderIdGenerator()
    batch = [ids() for _ in range(20000)]
    assert len(set(batch)) == len(batch)
    assert batch == sorted(batch)
    assert all(i.startswith("ord_") and len(i) == 30 for i in batch)


def test_order_ids_from_separate_generators_never_collide() -> None:
    # Two replicas (or a restarted producer) start in the same millisecond.
    first, second = OrderIdGenerator(), OrderIdGenerator()
    a = {first() for _ in range(5000)}
    b = {second() for _ in range(5000)}
    assert not a & b
