"""The producer's order generator and pacing (pure parts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from orderpipeline.core.order import parse_order
from orderpipeline.producer import OrderFactory, ProducerSettings, _due


@given(st.integers(min_value=0, max_value=2**32))
@settings(max_examples=50)
def test_every_generated_order_passes_the_shared_schema(seed: int) -> None:
    make = OrderFactory(ProducerSettings(), seed=seed)
    for _ in range(20):
        key, value = make()
        order = parse_order(value)
        assert order.order_id == key.decode()
        assert 10 <= order.amount <= 500
        assert order.country in {"US", "CA", "DE", "IN", "GB", "FR", "CN", "BR"}
        assert order.status in {"CREATED", "CONFIRMED", "CANCELLED"}
        assert order.currency == "USD" and order.source == "order-service"
        assert 1000 <= order.customer_id <= 9999


def test_configured_values_are_used() -> None:
    s = ProducerSettings(
        countries=("JP",),
        statuses=("NEW",),
        currency="EUR",
        min_amount=5,
        max_amount=5,
        source='shop "eu"',
    )
    order = parse_order(OrderFactory(s)()[1])
    assert (order.country, order.status, order.currency, order.amount) == ("JP", "NEW", "EUR", 5)
    assert order.source == 'shop "eu"'


def test_an_invalid_country_code_is_refused() -> None:
    with pytest.raises(ValueError, match="country"):
        ProducerSettings(countries='D"E')


def test_pacing_releases_orders_at_the_configured_rate() -> None:
    assert _due(10, started=0.0, sent=0, now=0.0) == 1
    assert _due(10, started=0.0, sent=1, now=0.05) == 0
    assert _due(10, started=0.0, sent=1, now=0.1) == 1
    assert _due(10, started=0.0, sent=5, now=1.0) == 6
