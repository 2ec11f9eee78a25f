"""The fraud rule (a pure function) and the alert it produces."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from orderpipeline.core.fraud_rule import REASON, FraudRule, is_suspicious
from orderpipeline.core.order import Order
from orderpipeline.fraud import alert_json

DEFAULT = FraudRule()


def order(amount: float, country: str) -> Order:
    return Order(
        order_id="ord_1",
        customer_id=1,
        amount=amount,
        currency="USD",
        country=country,
        status="CREATED",
        created_at=datetime(2026, 11, 27, 3, 40, 0, 123000, tzinfo=UTC),
    )


def test_the_original_rule_is_the_default() -> None:
    assert is_suspicious(order(300.01, "DE"), DEFAULT)
    assert not is_suspicious(order(300.0, "DE"), DEFAULT)  # strictly above
    assert not is_suspicious(order(499.0, "US"), DEFAULT)
    assert not is_suspicious(order(499.0, "CA"), DEFAULT)


countries = st.sampled_from(["US", "CA", "DE", "IN", "GB", "FR", "CN", "BR"])


@given(
    amount=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    country=countries,
    threshold=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    trusted=st.frozensets(countries),
)
def test_an_order_is_suspicious_exactly_when_above_threshold_and_untrusted(
    amount: float, country: str, threshold: float, trusted: frozenset[str]
) -> None:
    rule = FraudRule(threshold, trusted)
    assert is_suspicious(order(amount, country), rule) == (
        amount > threshold and country not in trusted
    )


def test_the_alert_carries_the_order_id_reason_amount_country_and_creation_time() -> None:
    alert = json.loads(alert_json(order(450.25, "BR"), "2026-11-27T03:40:01.000Z"))
    assert alert["order_id"] == "ord_1"
    assert alert["reason"] == REASON == "HIGH_AMOUNT_RISKY_COUNTRY"
    assert alert["amount"] == 450.25
    assert alert["country"] == "BR"
    assert alert["created_at"] == "2026-11-27T03:40:00.123Z"
    assert alert["detected_at"] == "2026-11-27T03:40:01.000Z"
